/* vCPU affinity planning: see affinity.h. */
#include "affinity.h"

int aff_wanted_node(const struct aff_vcpu *v, int nnodes, int own_node, uint32_t pct)
{
	if (!pct || !v->may_move || own_node < 0 || own_node >= nnodes || nnodes > NUMA_MAX_NODES)
		return -1;
	int best = own_node;
	for (int n = 0; n < nnodes; n++)
		if (v->misses[n] > v->misses[best])
			best = n;
	if (best == own_node || v->misses[best] < AFF_MIN_MISSES)
		return -1;
	if ((unsigned __int128)v->misses[best] * 100 < (unsigned __int128)v->misses[own_node] * pct)
		return -1;
	return best;
}

/* What vCPU i gains by running on node t: its misses there minus where it is. */
static uint64_t gain(const struct aff_cpu *cpus, const struct aff_vcpu *v, int t)
{
	uint64_t there = v->misses[t], here = v->misses[cpus[v->cpu].node];
	return there > here ? there - here : 0;
}

static uint64_t total(const struct aff_vcpu *v, int nnodes)
{
	uint64_t t = 0;
	for (int n = 0; n < nnodes; n++)
		t += v->misses[n];
	return t;
}

int aff_plan(struct aff_cpu *cpus, int ncpus, const struct aff_vcpu *v, int nv, int nnodes, uint32_t pct,
	     struct aff_move *out, int max)
{
	int want[AFF_MAX_VCPUS], n = 0;
	bool tried[AFF_MAX_VCPUS] = { 0 }, moved[AFF_MAX_VCPUS] = { 0 };
	if (nv > AFF_MAX_VCPUS)
		nv = AFF_MAX_VCPUS;
	for (int i = 0; i < nv; i++) {
		int c = v[i].cpu;
		want[i] = c >= 0 && c < ncpus && cpus[c].vcpu == i ? aff_wanted_node(&v[i], nnodes, cpus[c].node, pct) : -1;
	}
	while (n < max) {
		int pick = -1;                  /* the strongest want left */
		for (int i = 0; i < nv; i++)
			if (want[i] >= 0 && !tried[i] && !moved[i] &&
			    (pick < 0 || gain(cpus, &v[i], want[i]) > gain(cpus, &v[pick], want[pick])))
				pick = i;
		if (pick < 0)
			break;
		tried[pick] = true;
		int from = v[pick].cpu, t = want[pick], to = -1, other = -1;
		for (int c = 0; c < ncpus && to < 0; c++)
			if (cpus[c].node == t && cpus[c].vcpu == AFF_IDLE)
				to = c;
		for (int c = 0; c < ncpus && to < 0; c++) {
			int u = cpus[c].vcpu;
			if (cpus[c].node == t && u >= 0 && u < nv && !moved[u] && want[u] == cpus[from].node) {
				to = c;
				other = u;
			}
		}
		bool mutual = other >= 0, idle = to >= 0 && !mutual;
		for (int c = 0; c < ncpus && !mutual && !idle; c++) {
			int u = cpus[c].vcpu;
			if (cpus[c].node != t || u < 0 || u >= nv || moved[u] || !v[u].may_move)
				continue;
			if (want[u] < 0 && total(&v[u], nnodes) >= AFF_MIN_MISSES)
				continue;       /* it is at home on t */
			if (other < 0 || v[u].misses[t] < v[other].misses[t]) {
				other = u;
				to = c;
			}
		}
		if (to < 0 || (other >= 0 && n + 2 > max))
			continue;
		moved[pick] = true;
		out[n++] = (struct aff_move){ pick, to, true };
		cpus[to].vcpu = pick;
		cpus[from].vcpu = AFF_IDLE;
		if (other >= 0) {
			moved[other] = true;
			out[n++] = (struct aff_move){ other, from, mutual };
			cpus[from].vcpu = other;
		}
	}
	return n;
}
