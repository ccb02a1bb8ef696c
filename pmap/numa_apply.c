/* See numa_apply.h. */
#include "numa_apply.h"
#include "palloc.h"

struct numa_decision numa_apply_decide(const struct numa_apply_ctx *c, uint64_t gpa,
				       const struct numa_page_counts *cnt, struct numa_page_state *st,
				       uint32_t now)
{
	struct numa_decision none = { NUMA_NONE, NUMA_R_COLD, 0, 0 };
	uint64_t e = pmap_lookup(c->pm, gpa);
	if (!(e & PMAP_PRESENT))
		return none;
	int home = palloc_node_of(&g_palloc, PMAP_ADDR(e));
	if (home >= 0)
		st->home = (uint8_t)home;
	if (st->replicas && !PMAP_REPLICAS(e)) {
		struct numa_decision col = { NUMA_COLLAPSE, NUMA_R_MOVE, 0, 0 };
		numa_policy_commit(c->p, st, &col, now);
	}
	st->replicas = (uint8_t)PMAP_REPLICAS(e);
	return numa_policy_decide(c->p, c->nnodes, cnt, st, now);
}

struct numa_decision numa_apply_commit(const struct numa_apply_ctx *c, uint64_t gpa,
				       struct numa_page_state *st, struct numa_decision d, int rc,
				       uint32_t now)
{
	if (d.action == NUMA_NONE)
		return d;
	if (rc < 0) {
		struct numa_decision none = { NUMA_NONE, d.reason, 0, 0 };
		return none;
	}
	if (d.action == NUMA_REPLICATE)         /* the nodes it reached */
		d.nodes = (uint8_t)(PMAP_REPLICAS(pmap_lookup(c->pm, gpa)) & ~st->replicas);
	numa_policy_commit(c->p, st, &d, now);
	return d;
}

struct numa_decision numa_apply(const struct numa_apply_ctx *c, uint64_t gpa,
				const struct numa_page_counts *cnt, struct numa_page_state *st,
				uint32_t now)
{
	struct numa_decision d = numa_apply_decide(c, gpa, cnt, st, now);
	int rc;
	switch (d.action) {
	case NUMA_MIGRATE:
		rc = pmap_migrate(c->pm, c->s2, gpa, d.target, c->node_src[d.target], c->guest, c->tables);
		break;
	case NUMA_REPLICATE:
		rc = pmap_replicate(c->pm, c->s2, gpa, d.nodes, c->node_src, c->tables);
		break;
	case NUMA_COLLAPSE:
		rc = pmap_collapse(c->pm, gpa, c->guest);
		break;
	default:
		return d;
	}
	return numa_apply_commit(c, gpa, st, d, rc, now);
}
