/* The per-CPU cache model: see cachemodel.h. An entry is (line number << 2) | EXCL | VALID;
 * each set keeps its valid entries first, most recently used first. */
#include "cachemodel.h"

#define E_VALID  1ull
#define E_EXCL   2ull
#define E_LINE(e) ((e) >> 2)

static bool pow2(uint64_t x) { return x && !(x & (x - 1)); }

int cache_geometry_check(const struct cache_geometry *g, const char **err)
{
	const char *e = 0;
	if (!pow2(g->line) || g->line < 16 || g->line > 4096)
		e = "cache line size must be a power of two in 16..4096";
	else if (g->ways < 1 || g->ways > CM_MAX_WAYS)
		e = "cache ways must be in 1..16";
	else if (g->size == 0 || g->size % (g->line * g->ways))
		e = "cache size must be a non-zero multiple of line size times ways";
	else if (!pow2(g->size / (g->line * g->ways)))
		e = "cache size / (line size * ways) must be a power of two";
	if (err)
		*err = e;
	return e ? -1 : 0;
}

uint64_t cache_model_bytes(const struct cache_geometry *g)
{
	if (cache_geometry_check(g, 0))
		return 0;
	return (uint64_t)(g->size / g->line) * sizeof(uint64_t);
}

int cache_model_init(struct cache_model *c, const struct cache_geometry *g, void *storage)
{
	if (cache_geometry_check(g, 0) || !storage || ((uintptr_t)storage & 7))
		return -1;
	c->line_shift = 0;
	while ((1u << c->line_shift) < g->line)
		c->line_shift++;
	c->ways = g->ways;
	c->sets = g->size / (g->line * g->ways);
	c->entry = storage;
	cache_model_flush(c);
	return 0;
}

void cache_model_flush(struct cache_model *c)
{
	for (uint64_t i = 0; i < (uint64_t)c->sets * c->ways; i++)
		c->entry[i] = 0;
}

static uint64_t *set_of(const struct cache_model *c, uint64_t line)
{
	return &c->entry[(line & (c->sets - 1)) * c->ways];
}

/* Index of line in set s, or -1. */
static int find(const struct cache_model *c, const uint64_t *s, uint64_t line)
{
	for (uint32_t w = 0; w < c->ways; w++) {
		uint64_t e = s[w];
		if (!(e & E_VALID))
			return -1;           /* valid entries come first */
		if (E_LINE(e) == line)
			return (int)w;
	}
	return -1;
}

/* Moves s[from] to the front, shifting the others down. */
static void to_front(uint64_t *s, int from, uint64_t e)
{
	for (int w = from; w > 0; w--)
		s[w] = s[w - 1];
	s[0] = e;
}

enum cm_result cache_model_access(struct cache_model *c, uint64_t addr, bool write)
{
	uint64_t line = addr >> c->line_shift;
	uint64_t *s = set_of(c, line);
	int w = find(c, s, line);
	if (w >= 0) {
		uint64_t e = s[w];
		enum cm_result r = CM_HIT;
		if (write && !(e & E_EXCL)) {
			r = CM_UPGRADE;
			e |= E_EXCL;
		}
		to_front(s, w, e);
		return r;
	}
	/* miss: the LRU entry (the last one, or the first invalid one) makes room */
	int victim = (int)c->ways - 1;
	for (uint32_t i = 0; i < c->ways; i++)
		if (!(s[i] & E_VALID)) {
			victim = (int)i;
			break;
		}
	to_front(s, victim, (line << 2) | E_VALID | (write ? E_EXCL : 0));
	return CM_MISS;
}

bool cache_model_invalidate(struct cache_model *c, uint64_t addr)
{
	uint64_t line = addr >> c->line_shift;
	uint64_t *s = set_of(c, line);
	int w = find(c, s, line);
	if (w < 0)
		return false;
	/* close the gap so valid entries stay first */
	for (uint32_t i = (uint32_t)w; i + 1 < c->ways; i++)
		s[i] = s[i + 1];
	s[c->ways - 1] = 0;
	return true;
}

bool cache_model_downgrade(struct cache_model *c, uint64_t addr)
{
	uint64_t line = addr >> c->line_shift;
	uint64_t *s = set_of(c, line);
	int w = find(c, s, line);
	if (w < 0)
		return false;
	s[w] &= ~E_EXCL;
	return true;
}

bool cache_model_holds(const struct cache_model *c, uint64_t addr, bool *exclusive)
{
	uint64_t line = addr >> c->line_shift;
	const uint64_t *s = set_of(c, line);
	int w = find(c, s, line);
	if (exclusive)
		*exclusive = w >= 0 && (s[w] & E_EXCL);
	return w >= 0;
}
