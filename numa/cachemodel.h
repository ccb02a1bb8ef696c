/* A per-CPU cache model for the NUMA miss counters (issue 7): set-associative (1 way =
 * direct-mapped), LRU within a set, lines in one of two states, shared (clean, readable) or
 * exclusive (writable), so that a write to a line other caches hold invalidates them and a
 * write to a shared line is an upgrade that goes to memory, as on a directory-based
 * machine like FLASH. That makes write sharing show up as misses, which is what the
 * policy must see.
 *
 * Portable and freestanding: the caller gives the storage (cache_model_bytes()), so the TCG
 * plugin (numa/plugin/) and the host unit tests use the same code. Nothing here is
 * thread-safe: the plugin gives each vCPU its own cache and only the coherence actions
 * (cache_model_invalidate / cache_model_downgrade on other CPUs' caches) cross threads;
 * each touches one 64-bit entry at a time, which at worst makes the model a little wrong,
 * never unsafe. */
#ifndef MB_CACHEMODEL_H
#define MB_CACHEMODEL_H
#include <stdbool.h>
#include <stdint.h>

#define CM_DEFAULT_SIZE   (1u << 20)   /* 1 MiB: the (and Disco's FLASH-like) default */
#define CM_DEFAULT_LINE   128u
#define CM_DEFAULT_WAYS   1u           /* direct-mapped */
#define CM_MAX_WAYS       16u

struct cache_geometry {
	uint32_t size;    /* bytes, a multiple of line * ways */
	uint32_t line;    /* bytes, a power of two, 16..4096 */
	uint32_t ways;    /* 1..CM_MAX_WAYS; sets = size / (line * ways) must be a power of two */
};

struct cache_model {
	uint32_t line_shift;
	uint32_t sets;        /* a power of two */
	uint32_t ways;
	uint64_t *entry;      /* sets * ways entries; set s is entry[s*ways ..], MRU first */
};

enum cm_result {
	CM_HIT = 0,      /* served by this cache */
	CM_MISS,         /* the line was not here: a read or write miss to memory */
	CM_UPGRADE,      /* a write to a line held shared: a miss for ownership */
};

/* 0 if g is usable, else -1 and *err says why. */
int cache_geometry_check(const struct cache_geometry *g, const char **err);
/* Bytes of storage cache_model_init needs for g (0 if g is bad). */
uint64_t cache_model_bytes(const struct cache_geometry *g);
/* Sets up c over storage (cache_model_bytes(g) bytes, 8-aligned), empty. 0 or -1. */
int cache_model_init(struct cache_model *c, const struct cache_geometry *g, void *storage);
void cache_model_flush(struct cache_model *c);

/* An access of one byte range that lies within one line (the caller splits accesses that
 * straddle lines). Reads fill the line shared, writes leave it exclusive. */
enum cm_result cache_model_access(struct cache_model *c, uint64_t addr, bool write);
/* Coherence, done to the other CPUs' caches: a write elsewhere drops the line here; a read
 * miss elsewhere makes an exclusive line here shared. Return whether the line was here. */
bool cache_model_invalidate(struct cache_model *c, uint64_t addr);
bool cache_model_downgrade(struct cache_model *c, uint64_t addr);
/* Whether the line is here, and whether exclusive (for tests and statistics). */
bool cache_model_holds(const struct cache_model *c, uint64_t addr, bool *exclusive);

#endif
