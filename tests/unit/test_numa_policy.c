/* numa/policy.c: each rule, the thresholds at their edges, 1 and 8 nodes, the move budget
 * and its windows, decay, the write-fault collapse, and a randomized property test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policy.h"

static struct numa_policy_params P;
static struct numa_page_counts C;
static struct numa_page_state S;

static void fresh(int home)
{
	numa_policy_defaults(&P);
	memset(&C, 0, sizeof C);
	numa_page_init(&S, home);
}

static struct numa_decision decide(int nnodes, uint32_t now)
{
	return numa_policy_decide(&P, nnodes, &C, &S, now);
}

#define assert_decision(d, act, why) do { \
	assert_string_equal(numa_action_name((d).action), numa_action_name(act)); \
	assert_string_equal(numa_reason_name((d).reason), numa_reason_name(why)); \
} while (0)

static void test_defaults_and_check(void **state)
{
	(void)state;
	const char *err = "x";
	numa_policy_defaults(&P);
	assert_int_equal(P.hot_threshold, 128);
	assert_int_equal(P.share_threshold, 32);
	assert_int_equal(P.write_threshold, 1);
	assert_int_equal(P.migrate_pct, 80);
	assert_int_equal(P.decay_shift, NUMA_DECAY_RESET);
	assert_true(P.migrate && P.replicate);
	assert_int_equal(numa_policy_check(&P, 4, &err), 0);
	assert_null(err);
	assert_int_equal(numa_policy_check(&P, 1, NULL), 0);
	assert_int_equal(numa_policy_check(&P, 8, NULL), 0);
	assert_int_equal(numa_policy_check(&P, 0, &err), -1);
	assert_non_null(strstr(err, "nodes"));
	assert_int_equal(numa_policy_check(&P, 9, NULL), -1);

	struct { uint32_t *field; uint32_t bad; const char *word; } cases[] = {
		{ &P.hot_threshold, 0, "hot_threshold" },
		{ &P.share_threshold, 0, "share_threshold" },
		{ &P.write_threshold, 0, "write_threshold" },
		{ &P.migrate_pct, 50, "migrate_pct" },
		{ &P.migrate_pct, 101, "migrate_pct" },
		{ &P.max_replicas, 8, "max_replicas" },
		{ &P.move_budget, 256, "move_budget" },
		{ &P.budget_periods, 0, "budget_periods" },
		{ &P.decay_shift, 33, "decay_shift" },
		{ &P.period_ms, 0, "period_ms" },
		{ &P.affinity_pct, 1, "affinity_pct" },
		{ &P.affinity_pct, 100, "affinity_pct" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		numa_policy_defaults(&P);
		*cases[i].field = cases[i].bad;
		assert_int_equal(numa_policy_check(&P, 4, &err), -1);
		assert_non_null(strstr(err, cases[i].word));
	}
	/* the edges that are allowed */
	numa_policy_defaults(&P);
	P.migrate_pct = 51;
	P.affinity_pct = 101;
	P.max_replicas = 0;
	P.move_budget = 0;
	P.decay_shift = 0;
	assert_int_equal(numa_policy_check(&P, 4, NULL), 0);
	P.migrate_pct = 100;
	P.move_budget = 255;
	P.decay_shift = 32;
	assert_int_equal(numa_policy_check(&P, 4, NULL), 0);

	assert_string_equal(numa_action_name(NUMA_MIGRATE), "migrate");
	assert_string_equal(numa_action_name(99), "?");
	assert_string_equal(numa_reason_name(NUMA_R_WRITE_SHARED), "write-shared");
	assert_string_equal(numa_reason_name(-1), "?");
}

static void test_cold(void **state)
{
	(void)state;
	fresh(0);
	/* all zero */
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_COLD);
	/* one below the threshold, all on a remote node */
	C.read[2] = 127;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_COLD);
	/* exactly at the threshold: hot */
	C.read[2] = 128;
	struct numa_decision d = decide(4, 0);
	assert_decision(d, NUMA_MIGRATE, NUMA_R_MOVE);
	assert_int_equal(d.target, 2);
	/* reads and writes add up to the threshold */
	C.read[2] = 100;
	C.write[2] = 28;
	d = decide(4, 0);
	assert_decision(d, NUMA_MIGRATE, NUMA_R_MOVE);
	assert_int_equal(d.target, 2);
	C.write[2] = 27;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_COLD);
}

static void test_one_node(void **state)
{
	(void)state;
	fresh(0);
	C.read[0] = 100000;
	C.write[0] = 100000;
	assert_decision(decide(1, 0), NUMA_NONE, NUMA_R_COLD);
	/* a bad node count or a home outside the nodes never moves anything */
	assert_decision(decide(0, 0), NUMA_NONE, NUMA_R_COLD);
	assert_decision(decide(9, 0), NUMA_NONE, NUMA_R_COLD);
	numa_page_init(&S, 5);
	C.read[1] = 1000;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_COLD);
}

static void test_migrate_dominance(void **state)
{
	(void)state;
	fresh(0);
	/* node 3 has exactly 80% of 200 misses: migrate */
	C.read[3] = 160;
	C.read[0] = 40;
	struct numa_decision d = decide(4, 0);
	assert_decision(d, NUMA_MIGRATE, NUMA_R_MOVE);
	assert_int_equal(d.target, 3);
	/* 159 of 199: 79.9%: not dominant; node 0 (home) and 3 are both sharers, nobody
	 * wrote: replicate to 3 */
	C.read[3] = 159;
	d = decide(4, 0);
	assert_decision(d, NUMA_REPLICATE, NUMA_R_MOVE);
	assert_int_equal(d.nodes, 1u << 3);
	/* the dominant node is home: nothing to do */
	fresh(3);
	C.read[3] = 160;
	C.read[0] = 40;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_LOCAL);
	/* written by the dominant node alone: migrating is right (not write-shared: node 0's
	 * 20 misses are below share_threshold) */
	fresh(0);
	C.write[2] = 180;
	C.read[0] = 20;
	d = decide(4, 0);
	assert_decision(d, NUMA_MIGRATE, NUMA_R_MOVE);
	assert_int_equal(d.target, 2);
	/* migration turned off */
	P.migrate = false;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_DISABLED);
	/* migrate_pct 100: only a node with every miss is dominant */
	fresh(0);
	P.migrate_pct = 100;
	C.read[1] = 500;
	assert_int_equal(decide(4, 0).action, NUMA_MIGRATE);
	C.read[2] = 1;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_SCATTERED);
}

static void test_write_shared(void **state)
{
	(void)state;
	fresh(0);
	/* two sharers, one write, one node at 80%: the dominant node gets the page (a minor
	 * sharer does not keep a page where neither is: measured in tests/bench/numa) */
	C.read[1] = 160;
	C.read[2] = 39;
	C.write[2] = 1;
	assert_int_equal(decide(4, 0).action, NUMA_MIGRATE);
	assert_int_equal(decide(4, 0).target, 1);
	/* below 80%: write-shared, left alone */
	C.read[2] = 41;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_WRITE_SHARED);
	/* the same without the write: migrate to the dominant node */
	C.read[2] = 40;
	C.write[2] = 0;
	assert_int_equal(decide(4, 0).action, NUMA_MIGRATE);
	/* the other node just below share_threshold: not shared, so migrate although written */
	C.read[2] = 30;
	C.write[2] = 1;
	assert_int_equal(decide(4, 0).action, NUMA_MIGRATE);
	/* a write threshold of 4: three writes do not count as written */
	fresh(0);
	P.write_threshold = 4;
	C.read[1] = 100;
	C.read[2] = 100;
	C.write[1] = 3;
	assert_int_equal(decide(4, 0).action, NUMA_REPLICATE);
	C.write[1] = 4;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_WRITE_SHARED);
}

static void test_replicate(void **state)
{
	(void)state;
	fresh(1);
	/* read by nodes 0, 2 and 3 (sharers at exactly share_threshold), home 1 reads too */
	C.read[0] = 32;
	C.read[1] = 64;
	C.read[2] = 50;
	C.read[3] = 40;
	struct numa_decision d = decide(4, 0);
	assert_decision(d, NUMA_REPLICATE, NUMA_R_MOVE);
	assert_int_equal(d.nodes, (1u << 0) | (1u << 2) | (1u << 3));
	/* a node at 31 misses is not a sharer */
	C.read[0] = 31;
	d = decide(4, 0);
	assert_int_equal(d.nodes, (1u << 2) | (1u << 3));
	/* max_replicas 1: the hottest reader only */
	P.max_replicas = 1;
	d = decide(4, 0);
	assert_int_equal(d.nodes, 1u << 2);
	/* ties go to the lower node */
	C.read[3] = 50;
	d = decide(4, 0);
	assert_int_equal(d.nodes, 1u << 2);
	/* max_replicas 0 or replication off: nothing */
	P.max_replicas = 0;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_REPLICATED);
	P.max_replicas = 7;
	P.replicate = false;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_DISABLED);
	/* two sharers of which one is home, the other remote: replicate to the remote one */
	fresh(0);
	C.read[0] = 100;
	C.read[3] = 100;
	d = decide(4, 0);
	assert_decision(d, NUMA_REPLICATE, NUMA_R_MOVE);
	assert_int_equal(d.nodes, 1u << 3);
	/* hot but scattered thinly over many nodes: nothing */
	fresh(0);
	for (int n = 0; n < 8; n++)
		C.read[n] = 20;
	assert_decision(decide(8, 0), NUMA_NONE, NUMA_R_SCATTERED);
}

static void test_replicated_page(void **state)
{
	(void)state;
	fresh(0);
	C.read[0] = 100;
	C.read[1] = 100;
	struct numa_decision d = decide(4, 0);
	assert_int_equal(d.action, NUMA_REPLICATE);
	numa_policy_commit(&P, &S, &d, 0);
	assert_int_equal(S.replicas, 1u << 1);
	assert_int_equal(S.moves, 1);
	assert_int_equal(S.home, 0);
	/* the same readers again: nothing more to do */
	assert_decision(decide(4, 1), NUMA_NONE, NUMA_R_REPLICATED);
	/* a third reader appears: a further replica, if the budget allows (it does not) */
	C.read[2] = 100;
	assert_decision(decide(4, 1), NUMA_NONE, NUMA_R_BUDGET);
	P.move_budget = 2;
	d = decide(4, 1);
	assert_decision(d, NUMA_REPLICATE, NUMA_R_MOVE);
	assert_int_equal(d.nodes, 1u << 2);
	numa_policy_commit(&P, &S, &d, 1);
	assert_int_equal(S.replicas, (1u << 1) | (1u << 2));
	/* a node without a copy reading alone (home and the copies' nodes quiet: the copies
	 * are read, not this page) gets one too */
	memset(&C, 0, sizeof C);
	C.read[3] = 200;
	P.move_budget = 10;
	d = decide(4, 1);
	assert_decision(d, NUMA_REPLICATE, NUMA_R_MOVE);
	assert_int_equal(d.nodes, 1u << 3);
	C.read[0] = C.read[1] = C.read[2] = 100;
	C.read[3] = 0;
	/* max_replicas reached: no more */
	P.move_budget = 10;
	P.max_replicas = 2;
	C.read[3] = 100;
	assert_decision(decide(4, 1), NUMA_NONE, NUMA_R_REPLICATED);
	/* a replicated page one node dominates stays replicated (no migration of replicas) */
	memset(&C, 0, sizeof C);
	C.read[1] = 1000;
	assert_int_equal(decide(4, 1).action, NUMA_NONE);
	/* a write counted for a replicated page: collapse to home */
	C.write[3] = 1;
	d = decide(4, 1);
	assert_decision(d, NUMA_COLLAPSE, NUMA_R_MOVE);
	assert_int_equal(d.target, 0);
	uint8_t moves = S.moves;
	numa_policy_commit(&P, &S, &d, 1);
	assert_int_equal(S.replicas, 0);
	assert_int_equal(S.moves, moves);   /* collapses are free */
	assert_true(S.flags & NUMA_PG_WRITTEN);
}

static void test_write_fault_collapse(void **state)
{
	(void)state;
	fresh(2);
	assert_decision(numa_policy_on_write(&S), NUMA_NONE, NUMA_R_COLD);
	S.replicas = (1u << 0) | (1u << 3);
	struct numa_decision d = numa_policy_on_write(&S);
	assert_decision(d, NUMA_COLLAPSE, NUMA_R_MOVE);
	assert_int_equal(d.target, 2);
	/* even with the budget spent */
	S.moves = 200;
	assert_int_equal(numa_policy_on_write(&S).action, NUMA_COLLAPSE);
	numa_policy_commit(&P, &S, &d, 0);
	assert_int_equal(S.replicas, 0);
	/* collapsed by a write in this window: the page counts as written, so read sharing
	 * in the same window does not re-replicate it; it does in the next window */
	C.read[0] = 100;
	C.read[3] = 100;
	assert_decision(decide(4, 5), NUMA_NONE, NUMA_R_WRITE_SHARED);
	struct numa_decision again = decide(4, 10);
	assert_decision(again, NUMA_REPLICATE, NUMA_R_MOVE);
	assert_int_equal(again.nodes, (1u << 0) | (1u << 3));
}

static void test_budget(void **state)
{
	(void)state;
	fresh(0);
	P.budget_periods = 10;
	P.move_budget = 1;
	assert_int_equal(numa_policy_budget_left(&P, &S, 0), 1);
	C.read[1] = 500;
	struct numa_decision d = decide(4, 3);
	assert_int_equal(d.action, NUMA_MIGRATE);
	numa_policy_commit(&P, &S, &d, 3);
	assert_int_equal(S.home, 1);
	assert_int_equal(numa_policy_budget_left(&P, &S, 3), 0);
	/* node 2 now dominates: budget spent until the window ends */
	memset(&C, 0, sizeof C);
	C.read[2] = 500;
	assert_decision(decide(4, 3), NUMA_NONE, NUMA_R_BUDGET);
	assert_decision(decide(4, 9), NUMA_NONE, NUMA_R_BUDGET);
	/* period 10 starts window 1: budget back (node 2 writes: a read-only page that
	 * migrated before would be replicated instead, test_read_in_turn) */
	assert_int_equal(numa_policy_budget_left(&P, &S, 10), 1);
	C.read[2] = 0;
	C.write[2] = 500;
	d = decide(4, 10);
	assert_int_equal(d.action, NUMA_MIGRATE);
	assert_int_equal(d.target, 2);
	numa_policy_commit(&P, &S, &d, 10);
	assert_int_equal(S.moves, 1);
	assert_int_equal(S.window, 1);
	/* budget 0: nothing ever moves */
	fresh(0);
	P.move_budget = 0;
	C.read[1] = 500;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_BUDGET);
	C.read[0] = 500;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_BUDGET);  /* would replicate */
	/* budget 3 in one window: three moves, then no more */
	fresh(0);
	P.move_budget = 3;
	for (int i = 0; i < 3; i++) {
		memset(&C, 0, sizeof C);
		C.write[(S.home + 1) % 4] = 500;
		d = decide(4, 20);
		assert_int_equal(d.action, NUMA_MIGRATE);
		numa_policy_commit(&P, &S, &d, 20);
	}
	memset(&C, 0, sizeof C);
	C.write[(S.home + 1) % 4] = 500;
	assert_decision(decide(4, 29), NUMA_NONE, NUMA_R_BUDGET);
	/* budget_periods 1: every period is a new window */
	P.budget_periods = 1;
	assert_int_equal(decide(4, 30).action, NUMA_MIGRATE);
	/* a moves counter never wraps */
	fresh(0);
	P.move_budget = 255;
	S.moves = 255;
	d.action = NUMA_MIGRATE;
	d.target = 1;
	numa_policy_commit(&P, &S, &d, 0);
	assert_int_equal(S.moves, 255);
	assert_int_equal(numa_policy_budget_left(&P, &S, 0), 0);
}

/* Rule 4's exception: a page that migrated once and is then dominated, read-only, by another
 * node is read by one node after another; it is replicated there, home keeps its copy. */
static void test_read_in_turn(void **state)
{
	(void)state;
	fresh(0);
	P.move_budget = 4;
	C.read[1] = 500;
	struct numa_decision d = decide(4, 0);
	assert_int_equal(d.action, NUMA_MIGRATE);    /* the first time, nothing tells it apart */
	numa_policy_commit(&P, &S, &d, 0);
	assert_true(S.flags & NUMA_PG_MIGRATED);
	/* next period node 2 reads it alone: a copy for node 2, node 1 keeps the master */
	memset(&C, 0, sizeof C);
	C.read[2] = 500;
	d = decide(4, 1);
	assert_decision(d, NUMA_REPLICATE, NUMA_R_MOVE);
	assert_int_equal(d.nodes, 1u << 2);
	struct numa_page_state saved = S;
	numa_policy_commit(&P, &S, &d, 1);
	assert_int_equal(S.home, 1);
	assert_int_equal(S.replicas, 1u << 2);
	/* other sharers come along (node 3 is a sharer, node 1 is home), hottest first within
	 * max_replicas, the dominant node always */
	S = saved;
	C.read[2] = 420;
	C.read[3] = 40;
	C.read[1] = 40;
	d = decide(4, 1);
	assert_decision(d, NUMA_REPLICATE, NUMA_R_MOVE);
	assert_int_equal(d.nodes, 1u << 2 | 1u << 3);
	P.max_replicas = 1;
	assert_int_equal(decide(4, 1).nodes, 1u << 2);
	P.max_replicas = 0;
	d = decide(4, 1);
	assert_int_equal(d.action, NUMA_MIGRATE);    /* no replicas allowed: migrate as before */
	assert_int_equal(d.target, 2);
	P.max_replicas = 7;
	/* written in the period: it follows its writer */
	memset(&C, 0, sizeof C);
	C.read[2] = 400;
	C.write[2] = 1;
	d = decide(4, 1);
	assert_int_equal(d.action, NUMA_MIGRATE);
	assert_int_equal(d.target, 2);
	/* collapsed by a write earlier in the window (sticky): migrate */
	memset(&C, 0, sizeof C);
	C.read[2] = 500;
	S.flags |= NUMA_PG_WRITTEN;
	assert_int_equal(decide(4, 1).action, NUMA_MIGRATE);
	/* the history outlives the budget window (the sticky write does not) */
	struct numa_decision none = { NUMA_NONE, NUMA_R_COLD, 0, 0 };
	numa_policy_commit(&P, &S, &none, 25);
	assert_int_equal(S.flags, NUMA_PG_MIGRATED);
	assert_int_equal(decide(4, 25).action, NUMA_REPLICATE);
	/* replication turned off (migrate only): migrate as before */
	P.replicate = false;
	d = decide(4, 25);
	assert_int_equal(d.action, NUMA_MIGRATE);
	assert_int_equal(d.target, 2);
	/* home dominating is still LOCAL, and a fresh page still migrates */
	P.replicate = true;
	memset(&C, 0, sizeof C);
	C.read[1] = 500;
	assert_decision(decide(4, 25), NUMA_NONE, NUMA_R_LOCAL);
	fresh(1);
	C.read[2] = 500;
	assert_int_equal(decide(4, 0).action, NUMA_MIGRATE);
}

/* Eager replication: a page found read-shared gets a replica on every node the VM runs on
 * (counts.vm_nodes), not only on this period's sharers; none on nodes outside the VM. */
static void test_replicate_to_vm_nodes(void **state)
{
	(void)state;
	fresh(0);
	C.read[0] = 100;
	C.read[1] = 100;
	C.vm_nodes = 0x7;                            /* the VM runs on nodes 0-2 of 4 */
	struct numa_decision d = decide(4, 0);
	assert_decision(d, NUMA_REPLICATE, NUMA_R_MOVE);
	assert_int_equal(d.nodes, 0x6);              /* 1 (a sharer) and 2 (not yet reading), not 3 */
	P.max_replicas = 1;
	assert_int_equal(decide(4, 0).nodes, 0x2);   /* the sharer first */
	P.max_replicas = 7;
	C.vm_nodes = 0;                              /* unknown: the sharers only */
	assert_int_equal(decide(4, 0).nodes, 0x2);
	C.vm_nodes = 0xF0;                           /* nodes beyond nnodes are ignored */
	assert_int_equal(decide(4, 0).nodes, 0x2);
	/* written: still left alone, whatever the VM's nodes */
	C.vm_nodes = 0xF;
	C.write[1] = 1;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_WRITE_SHARED);
	/* a page read in turn: the dominant node and the VM's other nodes */
	fresh(0);
	S.flags = NUMA_PG_MIGRATED;
	S.home = 1;
	C.read[2] = 500;
	C.vm_nodes = 0xF;
	d = decide(4, 0);
	assert_decision(d, NUMA_REPLICATE, NUMA_R_MOVE);
	assert_int_equal(d.nodes, 0xD);              /* 0, 2, 3: all but home */
	P.max_replicas = 1;
	assert_int_equal(decide(4, 0).nodes, 0x4);   /* the dominant node first */
	/* a private page is still migrated, not replicated, whatever the VM's nodes */
	fresh(0);
	C.read[3] = 500;
	C.vm_nodes = 0xF;
	assert_int_equal(decide(4, 0).action, NUMA_MIGRATE);
}

static void test_decay(void **state)
{
	(void)state;
	fresh(0);
	for (int n = 0; n < NUMA_MAX_NODES; n++) {
		C.read[n] = 1000u + (uint32_t)n;
		C.write[n] = 0xffffffffu;
	}
	P.decay_shift = 1;
	numa_counts_decay(&P, &C);
	assert_int_equal(C.read[0], 500);
	assert_int_equal(C.read[7], 503);
	assert_int_equal(C.write[3], 0x7fffffffu);
	P.decay_shift = 0;
	numa_counts_decay(&P, &C);
	assert_int_equal(C.read[0], 500);
	P.decay_shift = 31;
	numa_counts_decay(&P, &C);
	assert_int_equal(C.write[3], 0);
	C.read[2] = 77;
	C.write[5] = 9;
	P.decay_shift = NUMA_DECAY_RESET;
	numa_counts_decay(&P, &C);
	for (int n = 0; n < NUMA_MAX_NODES; n++)
		assert_true(C.read[n] == 0 && C.write[n] == 0);
	/* a page hot for one period and then quiet goes cold after the reset */
	C.read[1] = 200;
	assert_int_equal(decide(4, 0).action, NUMA_MIGRATE);
	numa_counts_decay(&P, &C);
	assert_decision(decide(4, 1), NUMA_NONE, NUMA_R_COLD);
	/* halving: 256 stays hot one more period, 128 -> 64 does not */
	P.decay_shift = 1;
	C.read[1] = 256;
	numa_counts_decay(&P, &C);
	assert_int_equal(decide(4, 1).action, NUMA_MIGRATE);
	numa_counts_decay(&P, &C);
	assert_decision(decide(4, 2), NUMA_NONE, NUMA_R_COLD);
}

static void test_eight_nodes(void **state)
{
	(void)state;
	fresh(7);
	/* huge counts do not overflow: 8 nodes x 2 x 0xffffffff */
	for (int n = 0; n < 8; n++)
		C.read[n] = C.write[n] = 0xffffffffu;
	assert_decision(decide(8, 0), NUMA_NONE, NUMA_R_WRITE_SHARED);
	memset(&C, 0, sizeof C);
	C.read[0] = 0xffffffffu;
	struct numa_decision d = decide(8, 0);
	assert_int_equal(d.action, NUMA_MIGRATE);
	assert_int_equal(d.target, 0);
	/* kernel text: read by all eight nodes, replicated to the seven that are not home */
	for (int n = 0; n < 8; n++)
		C.read[n] = 1000;
	d = decide(8, 0);
	assert_decision(d, NUMA_REPLICATE, NUMA_R_MOVE);
	assert_int_equal(d.nodes, 0x7f);
	numa_policy_commit(&P, &S, &d, 0);
	assert_int_equal(S.replicas, 0x7f);
	/* counts for nodes past nnodes are ignored */
	fresh(0);
	C.read[6] = 1000;
	assert_decision(decide(4, 0), NUMA_NONE, NUMA_R_COLD);
}

/* Randomized: drive many pages through many periods with random counts, the mechanism
 * sometimes failing, random write faults, random parameters; check the invariants. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static void test_random_properties(void **state)
{
	(void)state;
	enum { PAGES = 64, PERIODS = 400 };
	static struct numa_page_state st[PAGES];
	static uint32_t moves_in_window[PAGES];
	unsigned long actions[4] = { 0 };
	for (int round = 0; round < 20; round++) {
		int nnodes = 1 + (int)(rnd() % 8);
		numa_policy_defaults(&P);
		P.hot_threshold = 1 + rnd() % 300;
		P.share_threshold = 1 + rnd() % 100;
		P.write_threshold = 1 + rnd() % 4;
		P.migrate_pct = 51 + rnd() % 50;
		P.max_replicas = rnd() % 8;
		P.move_budget = rnd() % 4;
		P.budget_periods = 1 + rnd() % 12;
		P.decay_shift = rnd() % 3 ? rnd() % 4 : NUMA_DECAY_RESET;
		P.migrate = rnd() % 4 != 0;
		P.replicate = rnd() % 4 != 0;
		assert_int_equal(numa_policy_check(&P, nnodes, NULL), 0);
		for (int i = 0; i < PAGES; i++) {
			numa_page_init(&st[i], (int)(rnd() % (unsigned)nnodes));
			moves_in_window[i] = 0;
		}
		static struct numa_page_counts cnt[PAGES];
		memset(cnt, 0, sizeof cnt);
		for (uint32_t now = 0; now < PERIODS; now++) {
			if (now % P.budget_periods == 0)
				memset(moves_in_window, 0, sizeof moves_in_window);
			for (int i = 0; i < PAGES; i++) {
				struct numa_page_counts *c = &cnt[i];
				c->vm_nodes = (uint8_t)(rnd() % 3 ? rnd() : 0);   /* any mask, also beyond nnodes */
				/* page kinds: private to a node, read-shared, write-shared, random */
				int kind = (int)((unsigned)i % 4), who = (int)(rnd() % (unsigned)nnodes);
				for (int n = 0; n < nnodes; n++) {
					uint32_t r = rnd() % 200, w = rnd() % 3 == 0 ? rnd() % 5 : 0;
					if (kind == 0 && n != who)
						r = w = 0;
					if (kind == 1)
						w = 0;
					c->read[n] += r;
					c->write[n] += w;
				}
				struct numa_page_state before = st[i];
				struct numa_decision d = numa_policy_decide(&P, nnodes, c, &st[i], now);
				assert_memory_equal(&before, &st[i], sizeof before);  /* pure */
				assert_true(d.action <= NUMA_COLLAPSE && d.reason < NUMA_R_NR);
				assert_true((d.action == NUMA_NONE) == (d.reason != NUMA_R_MOVE));

				uint64_t writes = 0;
				int sharers = 0;
				for (int n = 0; n < nnodes; n++) {
					writes += c->write[n];
					sharers += (uint64_t)c->read[n] + c->write[n] >= P.share_threshold;
				}
				bool wshared = writes >= P.write_threshold && sharers >= 2;
				if (d.action == NUMA_MIGRATE) {
					/* a write-shared page moves only to a node with migrate_pct of
					 * its misses */
					uint64_t total = 0;
					for (int n = 0; n < nnodes; n++)
						total += (uint64_t)c->read[n] + c->write[n];
					if (wshared)
						assert_true(((uint64_t)c->read[d.target] + c->write[d.target]) * 100 >=
							    (uint64_t)P.migrate_pct * total);
					assert_true(P.migrate);
					assert_true(d.target < nnodes && d.target != st[i].home);
					assert_int_equal(st[i].replicas, 0);
				}
				if (d.action == NUMA_REPLICATE) {
					assert_true(writes < P.write_threshold);  /* never replicates a written page */
					assert_true(P.replicate);
					assert_true(d.nodes != 0);
					assert_false(d.nodes & (1u << st[i].home));  /* never to home */
					assert_false(d.nodes & st[i].replicas);      /* never twice */
					assert_false(d.nodes & ~((1u << nnodes) - 1));
				}
				if (d.action == NUMA_COLLAPSE)
					assert_true(st[i].replicas != 0);
				if (d.action == NUMA_MIGRATE || d.action == NUMA_REPLICATE) {
					/* the budget holds */
					assert_true(moves_in_window[i] < P.move_budget);
					if (rnd() % 8 != 0) {      /* the mechanism may fail: no commit */
						numa_policy_commit(&P, &st[i], &d, now);
						moves_in_window[i]++;
					}
				} else if (d.action == NUMA_COLLAPSE) {
					numa_policy_commit(&P, &st[i], &d, now);
				}
				actions[d.action]++;
				/* a write fault now and then */
				if (kind >= 2 && rnd() % 16 == 0) {
					struct numa_decision w = numa_policy_on_write(&st[i]);
					assert_int_equal(w.action, st[i].replicas ? NUMA_COLLAPSE : NUMA_NONE);
					if (w.action == NUMA_COLLAPSE)
						numa_policy_commit(&P, &st[i], &w, now);
				}
				/* state invariants */
				assert_true(st[i].home < nnodes);
				assert_false(st[i].replicas & (1u << st[i].home));
				assert_false(st[i].replicas & ~((1u << nnodes) - 1));
				int nrep = 0;
				for (unsigned m = st[i].replicas; m; m &= m - 1)
					nrep++;
				assert_true((uint32_t)nrep <= P.max_replicas);
				assert_true(st[i].moves <= P.move_budget || P.move_budget == 0);
				numa_counts_decay(&P, c);
			}
		}
	}
	/* the run exercised every kind of decision */
	for (int a = 0; a < 4; a++)
		assert_true(actions[a] > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_check),
		cmocka_unit_test(test_cold),
		cmocka_unit_test(test_one_node),
		cmocka_unit_test(test_migrate_dominance),
		cmocka_unit_test(test_write_shared),
		cmocka_unit_test(test_replicate),
		cmocka_unit_test(test_replicated_page),
		cmocka_unit_test(test_write_fault_collapse),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_read_in_turn),
		cmocka_unit_test(test_replicate_to_vm_nodes),
		cmocka_unit_test(test_decay),
		cmocka_unit_test(test_eight_nodes),
		cmocka_unit_test(test_random_properties),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
