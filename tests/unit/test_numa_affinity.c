/* numa/affinity.c: when a vCPU wants another node, and the plans: to an idle pCPU, by a
 * swap, never onto a busy pCPU, strongest first, at most max moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "affinity.h"

static struct aff_vcpu vc(int cpu, uint64_t m0, uint64_t m1, uint64_t m2, uint64_t m3)
{
	return (struct aff_vcpu){ .cpu = cpu, .may_move = true, .misses = { m0, m1, m2, m3 } };
}

static void test_wanted_node(void **state)
{
	(void)state;
	struct aff_vcpu v = vc(0, 1000, 5000, 0, 0);
	assert_int_equal(aff_wanted_node(&v, 4, 0, 200), 1);
	assert_int_equal(aff_wanted_node(&v, 4, 1, 200), -1);        /* already there */
	assert_int_equal(aff_wanted_node(&v, 4, 0, 0), -1);          /* affinity off */
	assert_int_equal(aff_wanted_node(&v, 4, 0, 500), 1);         /* exactly 5x */
	assert_int_equal(aff_wanted_node(&v, 4, 0, 501), -1);
	v.may_move = false;
	assert_int_equal(aff_wanted_node(&v, 4, 0, 200), -1);
	struct aff_vcpu few = vc(0, 0, AFF_MIN_MISSES - 1, 0, 0);
	assert_int_equal(aff_wanted_node(&few, 4, 0, 200), -1);      /* too few to say */
	few.misses[1] = AFF_MIN_MISSES;
	assert_int_equal(aff_wanted_node(&few, 4, 0, 200), 1);
	struct aff_vcpu huge = vc(0, UINT64_MAX / 3, UINT64_MAX / 2, 0, 0);
	assert_int_equal(aff_wanted_node(&huge, 4, 0, 149), 1);      /* no overflow */
	assert_int_equal(aff_wanted_node(&huge, 4, 0, 151), -1);
	assert_int_equal(aff_wanted_node(&v, 1, 0, 200), -1);        /* node 1 does not exist */
}

/* 2 nodes x 2 pCPUs: cpus 0, 1 on node 0, cpus 2, 3 on node 1 */
static struct aff_cpu cpus[4];
static void layout(int v0, int v1, int v2, int v3)
{
	int v[4] = { v0, v1, v2, v3 };
	for (int c = 0; c < 4; c++)
		cpus[c] = (struct aff_cpu){ c / 2, v[c] };
}

static void test_to_idle_cpu(void **state)
{
	(void)state;
	layout(0, AFF_IDLE, 1, AFF_IDLE);
	struct aff_vcpu v[2] = { vc(0, 100, 9000, 0, 0), vc(2, 0, 5000, 0, 0) };
	struct aff_move m[8];
	assert_int_equal(aff_plan(cpus, 4, v, 2, 2, 200, m, 8), 1);
	assert_int_equal(m[0].vcpu, 0);
	assert_int_equal(m[0].to_cpu, 3);             /* the idle pCPU of node 1 */
	assert_int_equal(cpus[3].vcpu, 0);
	assert_int_equal(cpus[0].vcpu, AFF_IDLE);
}

static void test_swap(void **state)
{
	(void)state;
	layout(0, 1, 2, 3);                           /* no idle pCPU */
	struct aff_vcpu v[4] = { vc(0, 100, 9000, 0, 0), vc(1, 5000, 0, 0, 0), vc(2, 8000, 10, 0, 0),
				 vc(3, 0, 4000, 0, 0) };
	struct aff_move m[8];
	assert_int_equal(aff_plan(cpus, 4, v, 4, 2, 200, m, 8), 2);
	assert_int_equal(m[0].vcpu, 0);               /* the stronger want first */
	assert_int_equal(m[0].to_cpu, 2);
	assert_int_equal(m[1].vcpu, 2);
	assert_int_equal(m[1].to_cpu, 0);
	assert_int_equal(cpus[0].vcpu, 2);
	assert_int_equal(cpus[2].vcpu, 0);
	/* a swap does not fit in one move */
	layout(0, 1, 2, 3);
	assert_int_equal(aff_plan(cpus, 4, v, 4, 2, 200, m, 1), 0);
}

static void test_no_room(void **state)
{
	(void)state;
	layout(0, 1, 2, 3);
	/* vCPU 0 wants node 1, but nobody there wants node 0 */
	struct aff_vcpu v[4] = { vc(0, 100, 9000, 0, 0), vc(1, 5000, 0, 0, 0), vc(2, 0, 8000, 0, 0),
				 vc(3, 0, 4000, 0, 0) };
	struct aff_move m[8];
	assert_int_equal(aff_plan(cpus, 4, v, 4, 2, 200, m, 8), 0);
	/* a busy pCPU (several vCPUs) is neither a target nor a swap partner */
	layout(0, AFF_BUSY, 2, AFF_BUSY);
	v[2] = vc(2, 8000, 0, 0, 0);
	assert_int_equal(aff_plan(cpus, 4, v, 4, 2, 200, m, 8), 2);   /* 0 <-> 2 still swap */
	layout(0, AFF_BUSY, AFF_BUSY, AFF_BUSY);
	assert_int_equal(aff_plan(cpus, 4, v, 4, 2, 200, m, 8), 0);
	/* a vCPU whose pCPU does not list it (it is moving) does not move */
	layout(AFF_BUSY, AFF_IDLE, AFF_IDLE, AFF_IDLE);
	assert_int_equal(aff_plan(cpus, 4, v, 1, 2, 200, m, 8), 0);
}

static void test_max_and_order(void **state)
{
	(void)state;
	/* 4 nodes x 1 pCPU + idle ones: three vCPUs want node 3, which has one idle pCPU */
	struct aff_cpu c8[8];
	for (int c = 0; c < 8; c++)
		c8[c] = (struct aff_cpu){ c / 2, AFF_IDLE };
	c8[0].vcpu = 0;
	c8[2].vcpu = 1;
	c8[4].vcpu = 2;
	c8[7].vcpu = 3;                               /* node 3 keeps one idle pCPU: 6 */
	struct aff_vcpu v[4] = { vc(0, 0, 0, 0, 3000), vc(2, 0, 0, 0, 9000), vc(4, 0, 0, 0, 6000),
				 vc(7, 0, 0, 0, 2000) };      /* at home on node 3 */
	struct aff_move m[8];
	assert_int_equal(aff_plan(c8, 8, v, 4, 4, 200, m, 8), 1);
	assert_int_equal(m[0].vcpu, 1);               /* the one that gains most */
	assert_int_equal(m[0].to_cpu, 6);
	/* max 0: nothing */
	assert_int_equal(aff_plan(c8, 8, v, 4, 4, 200, m, 0), 0);
}

/* A process moved to another node's vCPU and left its old vCPU idle: the vCPU that runs it
 * swaps with the quiet one; a vCPU at home is never displaced, nor one in its cool-down. */
static void test_swap_with_quiet(void **state)
{
	(void)state;
	layout(0, 1, 2, 3);
	struct aff_vcpu v[4] = { vc(0, 50, 10, 0, 0),              /* quiet: its process left */
				 vc(1, 6000, 100, 0, 0),           /* at home on node 0 */
				 vc(2, 9000, 200, 0, 0),           /* runs the moved process */
				 vc(3, 0, 4000, 0, 0) };
	struct aff_move m[8];
	assert_int_equal(aff_plan(cpus, 4, v, 4, 2, 200, m, 8), 2);
	assert_int_equal(m[0].vcpu, 2);
	assert_int_equal(m[0].to_cpu, 0);
	assert_true(m[0].wanted);
	assert_int_equal(m[1].vcpu, 0);               /* the quiet one makes room */
	assert_int_equal(m[1].to_cpu, 2);
	assert_false(m[1].wanted);
	assert_int_equal(cpus[0].vcpu, 2);
	assert_int_equal(cpus[2].vcpu, 0);
	assert_int_equal(cpus[1].vcpu, 1);            /* the one at home stays */
	/* the quiet one in its cool-down: nobody to swap with */
	layout(0, 1, 2, 3);
	v[0].may_move = false;
	assert_int_equal(aff_plan(cpus, 4, v, 4, 2, 200, m, 8), 0);
	/* a busy vCPU at home on node 0 instead of the quiet one: no move either */
	layout(0, 1, 2, 3);
	v[0] = vc(0, 5000, 0, 0, 0);
	assert_int_equal(aff_plan(cpus, 4, v, 4, 2, 200, m, 8), 0);
}

/* Each node's vCPUs run the processes whose memory is on the node before (a guest scheduler
 * rotated them): swaps with vCPUs that want to leave too unwind it, one period at a time. */
static void test_rotation_unwinds(void **state)
{
	(void)state;
	struct aff_cpu c4[4];
	struct aff_vcpu v[4];
	for (int c = 0; c < 4; c++)                  /* 4 nodes x 1 pCPU */
		c4[c] = (struct aff_cpu){ c, c };
	for (int i = 0; i < 4; i++) {
		v[i] = vc(i, 200, 200, 200, 200);
		v[i].misses[(i + 3) % 4] = 8000 + 1000 * (uint64_t)i;  /* memory one node back */
	}
	struct aff_move m[8];
	for (int period = 0; period < 4; period++) {
		int n = aff_plan(c4, 4, v, 4, 4, 200, m, 4);
		for (int k = 0; k < n; k++) {
			v[m[k].vcpu].cpu = m[k].to_cpu;
			if (m[k].wanted)
				v[m[k].vcpu].may_move = false;   /* its cool-down */
		}
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(v[i].cpu, (i + 3) % 4);  /* every vCPU beside its memory (pCPU = node) */
	for (int c = 0; c < 4; c++)
		assert_int_equal(c4[c].vcpu, (c + 1) % 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wanted_node),
		cmocka_unit_test(test_to_idle_cpu),
		cmocka_unit_test(test_swap),
		cmocka_unit_test(test_no_room),
		cmocka_unit_test(test_max_and_order),
		cmocka_unit_test(test_swap_with_quiet),
		cmocka_unit_test(test_rotation_unwinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
