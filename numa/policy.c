/* The NUMA page-placement policy: see policy.h for the rules and their defaults. */
#include "policy.h"

void numa_policy_defaults(struct numa_policy_params *p)
{
	p->hot_threshold = 128;
	p->share_threshold = 32;
	p->write_threshold = 1;
	p->migrate_pct = 80;
	p->max_replicas = NUMA_MAX_NODES - 1;
	p->move_budget = 1;
	p->budget_periods = 10;
	p->decay_shift = NUMA_DECAY_RESET;
	p->period_ms = 100;
	p->affinity_pct = 0;
	p->migrate = true;
	p->replicate = true;
}

int numa_policy_check(const struct numa_policy_params *p, int nnodes, const char **err)
{
	const char *e = 0;
	if (nnodes < 1 || nnodes > NUMA_MAX_NODES)
		e = "number of nodes out of range (1..8)";
	else if (p->hot_threshold < 1)
		e = "hot_threshold must be at least 1";
	else if (p->share_threshold < 1)
		e = "share_threshold must be at least 1";
	else if (p->write_threshold < 1)
		e = "write_threshold must be at least 1";
	else if (p->migrate_pct <= 50 || p->migrate_pct > 100)
		e = "migrate_pct must be in 51..100";
	else if (p->max_replicas > NUMA_MAX_NODES - 1)
		e = "max_replicas must be at most 7";
	else if (p->move_budget > 255)
		e = "move_budget must be at most 255";
	else if (p->budget_periods < 1)
		e = "budget_periods must be at least 1";
	else if (p->decay_shift > NUMA_DECAY_RESET)
		e = "decay_shift must be at most 32";
	else if (p->period_ms < 1)
		e = "period_ms must be at least 1";
	else if (p->affinity_pct && p->affinity_pct <= 100)
		e = "affinity_pct must be 0 (off) or above 100";
	if (err)
		*err = e;
	return e ? -1 : 0;
}

void numa_page_init(struct numa_page_state *st, int home)
{
	st->home = (uint8_t)home;
	st->replicas = 0;
	st->moves = 0;
	st->flags = 0;
	st->window = 0;
}

static int popcount8(unsigned m)
{
	int n = 0;
	for (; m; m &= m - 1)
		n++;
	return n;
}

static uint32_t window_of(const struct numa_policy_params *p, uint32_t now)
{
	return now / (p->budget_periods ? p->budget_periods : 1);
}

uint32_t numa_policy_budget_left(const struct numa_policy_params *p,
				 const struct numa_page_state *st, uint32_t now)
{
	uint32_t used = st->window == window_of(p, now) ? st->moves : 0;
	return used >= p->move_budget ? 0 : p->move_budget - used;
}

static bool sticky_written(const struct numa_policy_params *p, const struct numa_page_state *st,
			   uint32_t now)
{
	return st->window == window_of(p, now) && (st->flags & NUMA_PG_WRITTEN);
}

static struct numa_decision none(int reason)
{
	struct numa_decision d = { NUMA_NONE, (uint8_t)reason, 0, 0 };
	return d;
}

/* Sharers not yet holding a copy, hottest first, so that at most `room` of them are
 * chosen; ties go to the lower node number. */
static unsigned pick_replicas(const uint64_t *miss, unsigned candidates, uint32_t room)
{
	unsigned chosen = 0;
	while (room-- > 0) {
		int best = -1;
		for (int n = 0; n < NUMA_MAX_NODES; n++)
			if ((candidates & ~chosen) & (1u << n))
				if (best < 0 || miss[n] > miss[best])
					best = n;
		if (best < 0)
			break;
		chosen |= 1u << best;
	}
	return chosen;
}

struct numa_decision numa_policy_decide(const struct numa_policy_params *p, int nnodes,
					const struct numa_page_counts *c,
					const struct numa_page_state *st, uint32_t now)
{
	if (nnodes < 2 || nnodes > NUMA_MAX_NODES || st->home >= nnodes)
		return none(NUMA_R_COLD);

	uint64_t miss[NUMA_MAX_NODES] = { 0 }, total = 0, writes = 0;
	unsigned sharers = 0;
	int nsharers = 0;
	for (int n = 0; n < nnodes; n++) {
		miss[n] = (uint64_t)c->read[n] + c->write[n];
		total += miss[n];
		writes += c->write[n];
		if (miss[n] >= p->share_threshold) {
			sharers |= 1u << n;
			nsharers++;
		}
	}
	if (total < p->hot_threshold)
		return none(NUMA_R_COLD);

	bool written = writes >= p->write_threshold || sticky_written(p, st, now);
	unsigned valid = (1u << nnodes) - 1;
	unsigned home_bit = 1u << st->home;
	unsigned replicas = st->replicas & valid & ~home_bit;
	uint32_t budget = numa_policy_budget_left(p, st, now);

	if (replicas) {
		if (writes >= p->write_threshold) {
			struct numa_decision d = { NUMA_COLLAPSE, NUMA_R_MOVE, st->home, 0 };
			return d;
		}
		/* more readers of a replicated page: rule 6 for them. The page is read-shared
		 * already, so one new reader is enough (the nodes with a copy read it, not this
		 * page: the master's counts come from home and from nodes still without one) */
		unsigned want = sharers & ~home_bit & ~replicas;
		if (!want)
			return none(NUMA_R_REPLICATED);
		if (!p->replicate)
			return none(NUMA_R_DISABLED);
		int have = popcount8(replicas);
		if ((uint32_t)have >= p->max_replicas)
			return none(NUMA_R_REPLICATED);
		if (!budget)
			return none(NUMA_R_BUDGET);
		struct numa_decision d = { NUMA_REPLICATE, NUMA_R_MOVE, 0,
					   (uint8_t)pick_replicas(miss, want, p->max_replicas - (uint32_t)have) };
		return d;
	}

	for (int n = 0; n < nnodes; n++) {
		if (miss[n] * 100 < (uint64_t)p->migrate_pct * total)
			continue;
		/* n is the (unique, since migrate_pct > 50) dominant node */
		if (n == st->home)
			return none(NUMA_R_LOCAL);
		bool read_in_turn = (st->flags & NUMA_PG_MIGRATED) && !written &&
				    p->replicate && p->max_replicas > 0;
		if (!p->migrate && !read_in_turn)
			return none(NUMA_R_DISABLED);
		if (!budget)
			return none(NUMA_R_BUDGET);
		if (read_in_turn) {
			unsigned want = (sharers | (c->vm_nodes & valid) | 1u << n) & ~home_bit;
			struct numa_decision d = { NUMA_REPLICATE, NUMA_R_MOVE, 0,
						   (uint8_t)(1u << n | pick_replicas(miss, want & ~(1u << n), p->max_replicas - 1)) };
			return d;
		}
		struct numa_decision d = { NUMA_MIGRATE, NUMA_R_MOVE, (uint8_t)n, 0 };
		return d;
	}

	if (written && nsharers >= 2)
		return none(NUMA_R_WRITE_SHARED);

	if (nsharers >= 2) {
		unsigned want = (sharers | (c->vm_nodes & valid)) & ~home_bit;
		if (!want || p->max_replicas == 0)
			return none(NUMA_R_REPLICATED);
		if (!p->replicate)
			return none(NUMA_R_DISABLED);
		if (!budget)
			return none(NUMA_R_BUDGET);
		struct numa_decision d = { NUMA_REPLICATE, NUMA_R_MOVE, 0,
					   (uint8_t)pick_replicas(miss, want, p->max_replicas) };
		return d;
	}
	return none(NUMA_R_SCATTERED);
}

struct numa_decision numa_policy_on_write(const struct numa_page_state *st)
{
	if (st->replicas & ~(1u << st->home)) {
		struct numa_decision d = { NUMA_COLLAPSE, NUMA_R_MOVE, st->home, 0 };
		return d;
	}
	return none(NUMA_R_COLD);
}

void numa_policy_commit(const struct numa_policy_params *p, struct numa_page_state *st,
			const struct numa_decision *d, uint32_t now)
{
	uint32_t w = window_of(p, now);
	if (st->window != w) {
		st->window = w;
		st->moves = 0;
		st->flags &= NUMA_PG_MIGRATED;
	}
	switch (d->action) {
	case NUMA_MIGRATE:
		st->home = d->target;
		st->replicas = 0;
		st->flags |= NUMA_PG_MIGRATED;
		if (st->moves < 255)
			st->moves++;
		break;
	case NUMA_REPLICATE:
		st->replicas |= d->nodes;
		st->replicas &= (uint8_t)~(1u << st->home);
		if (st->moves < 255)
			st->moves++;
		break;
	case NUMA_COLLAPSE:
		st->replicas = 0;
		st->flags |= NUMA_PG_WRITTEN;
		break;
	default:
		break;
	}
}

void numa_counts_decay(const struct numa_policy_params *p, struct numa_page_counts *c)
{
	for (int n = 0; n < NUMA_MAX_NODES; n++) {
		if (p->decay_shift >= NUMA_DECAY_RESET) {
			c->read[n] = c->write[n] = 0;
		} else {
			c->read[n] >>= p->decay_shift;
			c->write[n] >>= p->decay_shift;
		}
	}
}

const char *numa_action_name(int action)
{
	static const char *const names[] = { "none", "migrate", "replicate", "collapse" };
	return action >= 0 && action <= NUMA_COLLAPSE ? names[action] : "?";
}

const char *numa_reason_name(int reason)
{
	static const char *const names[] = { "move", "cold", "local", "write-shared", "budget",
					     "disabled", "replicated", "scattered" };
	return reason >= 0 && reason < NUMA_R_NR ? names[reason] : "?";
}
