# Mirrorball: `make` builds, `make run` boots the default config, `make test` runs every test,
# `make check` runs the host unit tests only. run/test install what is missing first.
BUILD   := build
CROSS   ?= aarch64-linux-gnu-
CC      ?= gcc
CONFIG  ?= configs/eight-linux.conf

# ---- the monitor: freestanding AArch64 at EL2 ----
MON_DIRS := monitor vcpu pmap numa vdisk vnet lib
MON_SRC  := $(wildcard monitor/*.c vcpu/*.c pmap/*.c numa/*.c vdisk/*.c vnet/*.c) lib/string.c lib/fmt.c lib/crc32.c lib/btree.c lib/virtq.c lib/vmmio.c
MON_ASM  := $(wildcard monitor/*.S)
MON_OBJ  := $(patsubst %,$(BUILD)/mon/%.o,$(MON_SRC) $(MON_ASM))
MON_CFLAGS := -O2 -g -Wall -Wextra -Werror=implicit-function-declaration -Wno-unused-parameter -ffreestanding -nostdlib \
	-march=armv8-a+crc -mgeneral-regs-only -mno-outline-atomics -fno-stack-protector -fno-pic -mstrict-align \
	-ffunction-sections -fno-builtin-memcpy -Iinclude $(addprefix -I,$(MON_DIRS))

# ---- portable code also built for the host (unit tests, fuzzers) ----
PORTABLE := lib/fmt.c lib/crc32.c monitor/hostdt.c monitor/hostimg.c numa/palloc.c numa/policy.c numa/affinity.c numa/cachemodel.c \
	pmap/pmap.c pmap/stage2.c vcpu/mmio_decode.c vcpu/vgic.c vcpu/vpl011.c lib/btree.c lib/virtq.c \
	lib/vmmio.c vdisk/vdisk.c vdisk/vblk.c vnet/vnet.c vnet/switch.c vnet/remap.c
PORTABLE += pmap/guestmem.c pmap/numa_apply.c
HOST_CFLAGS := -O1 -g -Wall -Wextra -DVNET_PORTABLE -Iinclude $(addprefix -I,$(MON_DIRS)) -Iloader -Itests/unit
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer

# ---- the loader ----
LOADER_SRC := $(wildcard loader/*.c) lib/crc32.c numa/policy.c
LOADER_LIBS := -lfdt -linih

# ---- SPLASHOS apps on the host (pthreads), for their tests ----
SPLASH_APPS := $(filter-out splashos/apps/selftest.c,$(wildcard splashos/apps/*.c))
SPLASH_HOST_CFLAGS := -O2 -g -Wall -Wextra -ffp-contract=off -DSPLASH_HOST -Isplashos/include -pthread

$(BUILD)/splash-host: splashos/host/splash_host.c $(SPLASH_APPS) splashos/include/splash.h $(wildcard splashos/apps/*.h)
	@mkdir -p $(BUILD)
	$(CC) $(SPLASH_HOST_CFLAGS) -o $@ splashos/host/splash_host.c $(SPLASH_APPS) -lm

$(BUILD)/splash-host-san: splashos/host/splash_host.c $(SPLASH_APPS) splashos/include/splash.h $(wildcard splashos/apps/*.h)
	@mkdir -p $(BUILD)
	$(CC) $(SPLASH_HOST_CFLAGS) $(SAN) -O1 -o $@ splashos/host/splash_host.c $(SPLASH_APPS) -lm

# ---- SPLASHOS: the library OS as a guest image (every app linked in) and its inputs ----
$(BUILD)/guest/splashos.img: $(wildcard splashos/kernel/* splashos/apps/*.c splashos/apps/*.h splashos/include/*.h) splashos/build.sh
	@mkdir -p $(dir $@)
	@echo "  SPLASHOS $@"
	@bash splashos/build.sh $@

# the same, linked where plain QEMU's -kernel loads an Image: tests/bench/splash runs it directly
$(BUILD)/guest/splashos-direct.img: $(wildcard splashos/kernel/* splashos/apps/*.c splashos/apps/*.h splashos/include/*.h) splashos/build.sh
	@SPLASHOS_LINK_ADDR=0x40200000 bash splashos/build.sh $@

# newc cpio of splashos/inputs/ (names relative to it): the SPLASHOS VMs' initrd, read by sp_file
$(BUILD)/guest/splash-inputs.cpio: splashos/inputs $(wildcard splashos/inputs/*)
	@mkdir -p $(dir $@)
	@echo "  CPIO    $@"
	@(cd splashos/inputs && find . -type f ! -name '.*' | LC_ALL=C sort | cpio --quiet -o -H newc) >$@.tmp && mv $@.tmp $@

# SPLASHOS's libm and formatter, built on the host and compared with glibc (make check)
SPLASH_UNIT := $(BUILD)/unit/test_splash_libm $(BUILD)/unit/test_splash_fmt
$(SPLASH_UNIT): $(BUILD)/unit/%: tests/unit/%.c $(wildcard splashos/kernel/*.c splashos/kernel/*.h splashos/include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(SAN) -o $@ $< -lcmocka -lm

UNIT_TESTS := $(patsubst tests/unit/%.c,%,$(filter-out tests/unit/arch_stub.c,$(wildcard tests/unit/test_*.c)))

.PHONY: all deps guest run test check integration bench clean fuzz
all: $(BUILD)/monitor.elf $(BUILD)/mball $(BUILD)/guest/hostile.img $(BUILD)/guest/splashos.img $(BUILD)/guest/splash-inputs.cpio

deps:
	@bash scripts/setup.sh

guest: deps
	@bash scripts/fetch-guest.sh
	@bash scripts/mkrootfs.sh
	@# configs/shared-disk.conf's persistent disk: made once, then it keeps what guests wrote
	@test -f $(BUILD)/guest/persist.img || mke2fs -q -t ext4 -L persist $(BUILD)/guest/persist.img 16M

$(BUILD)/mon/%.c.o: %.c $(wildcard include/mirrorball/*.h */*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CROSS)gcc $(MON_CFLAGS) -c $< -o $@

$(BUILD)/mon/%.S.o: %.S
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CROSS)gcc $(MON_CFLAGS) -c $< -o $@

$(BUILD)/monitor.elf: $(MON_OBJ) monitor/monitor.ld
	@echo "  LD      $@"
	@$(CROSS)ld --no-warn-rwx-segments -T monitor/monitor.ld --gc-sections -o $@ $(MON_OBJ)

$(BUILD)/mball: $(LOADER_SRC) $(wildcard loader/*.h include/mirrorball/*.h)
	@mkdir -p $(BUILD)
	$(CC) -O2 -g -Wall -Wextra -Iinclude -Ilib -Inuma -o $@ $(LOADER_SRC) $(LOADER_LIBS)

# The hostile test guest: bare metal, ours, packaged as an arm64 Image.
$(BUILD)/guest/hostile.img: $(wildcard tests/guests/hostile/*)
	@mkdir -p $(dir $@)
	@echo "  GUEST   $@"
	@bash tests/guests/hostile/build.sh $@

# Unit tests: each tests/unit/test_X.c links the portable code (and the loader's, minus main).
# The device-model tests also link their shared fake guest and virtio driver (UNIT_EXTRA).
FAKE_GUEST_TESTS := $(addprefix $(BUILD)/unit/,test_vdisk test_vblk test_vnet)
$(FAKE_GUEST_TESTS): tests/unit/fake_guest.c
$(FAKE_GUEST_TESTS): UNIT_EXTRA := tests/unit/fake_guest.c
# The counter-region test pushes to the hot-page ring from several threads.
$(BUILD)/unit/test_numa_counters: UNIT_EXTRA := -pthread
# The page-movement test models TLB invalidation completing after accesses in flight.
$(BUILD)/unit/test_numa_move: UNIT_EXTRA := -Wl,--wrap=arch_s2_flush_ipa -Wl,--wrap=arch_s2_flush_vmid -Wl,--wrap=arch_clean_dcache -pthread
$(BUILD)/unit/%: tests/unit/%.c tests/unit/arch_stub.c $(PORTABLE) $(filter-out loader/main.c,$(wildcard loader/*.c)) $(wildcard */*.h include/mirrorball/*.h tests/unit/*.h tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(SAN) -o $@ $< $(UNIT_EXTRA) tests/unit/arch_stub.c $(PORTABLE) \
		$(filter-out loader/main.c,$(wildcard loader/*.c)) -lcmocka $(LOADER_LIBS)

# Fuzz targets: built standalone with gcc (a generated corpus) for `make check`; `make fuzz`
# runs them under libFuzzer when clang is there.
$(BUILD)/fuzz/fuzz_btree: tests/fuzz/fuzz_btree.c tests/fuzz/btree_model.h tests/fuzz/standalone.h lib/btree.c lib/btree.h
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(SAN) -DFUZZ_STANDALONE -o $@ tests/fuzz/fuzz_btree.c lib/btree.c

$(BUILD)/fuzz/fuzz_virtq: tests/fuzz/fuzz_virtq.c tests/fuzz/standalone.h lib/virtq.c lib/virtq.h
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(SAN) -DFUZZ_STANDALONE -o $@ tests/fuzz/fuzz_virtq.c lib/virtq.c

$(BUILD)/fuzz/fuzz_vblk: pmap/guestmem.c
$(BUILD)/fuzz/fuzz_vblk: tests/fuzz/fuzz_vblk.c tests/fuzz/standalone.h tests/unit/arch_stub.c vdisk/vblk.c vdisk/vdisk.c lib/vmmio.c lib/virtq.c lib/btree.c lib/fmt.c pmap/pmap.c pmap/stage2.c numa/palloc.c $(wildcard vdisk/*.h lib/*.h pmap/*.h numa/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(SAN) -DFUZZ_STANDALONE -o $@ $(filter %.c,$^)

FUZZERS := fuzz_btree fuzz_virtq fuzz_vblk

check: deps
	@$(MAKE) --no-print-directory $(addprefix $(BUILD)/unit/,$(UNIT_TESTS)) $(addprefix $(BUILD)/fuzz/,$(FUZZERS)) $(BUILD)/splash-host-san
	@fail=0; for t in $(UNIT_TESTS); do echo "== $$t"; $(BUILD)/unit/$$t || fail=1; done; \
	 for f in $(FUZZERS); do echo "== $$f"; $(BUILD)/fuzz/$$f || fail=1; done; \
	 echo "== splash apps (host)"; bash tests/splash/host-apps.sh $(BUILD)/splash-host-san || fail=1; exit $$fail

fuzz:
	@mkdir -p $(BUILD)/fuzz/corpus
	clang -O1 -g -fsanitize=fuzzer,address,undefined -Ilib -Iinclude -o $(BUILD)/fuzz/fuzz_btree_lf tests/fuzz/fuzz_btree.c lib/btree.c
	$(BUILD)/fuzz/fuzz_btree_lf -max_len=4096 -max_total_time=300 $(BUILD)/fuzz/corpus
	@mkdir -p $(BUILD)/fuzz/corpus-virtq
	clang -O1 -g -fsanitize=fuzzer,address,undefined -Ilib -Iinclude -o $(BUILD)/fuzz/fuzz_virtq_lf tests/fuzz/fuzz_virtq.c lib/virtq.c
	$(BUILD)/fuzz/fuzz_virtq_lf -max_len=33000 -max_total_time=300 $(BUILD)/fuzz/corpus-virtq
	@mkdir -p $(BUILD)/fuzz/corpus-vblk
	clang -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -Ilib -Ipmap -Inuma -Ivdisk -Itests/unit -o $(BUILD)/fuzz/fuzz_vblk_lf \
		tests/fuzz/fuzz_vblk.c tests/unit/arch_stub.c vdisk/vblk.c vdisk/vdisk.c lib/vmmio.c lib/virtq.c lib/btree.c lib/fmt.c pmap/pmap.c pmap/stage2.c pmap/guestmem.c numa/palloc.c
	$(BUILD)/fuzz/fuzz_vblk_lf -max_len=65552 -max_total_time=300 $(BUILD)/fuzz/corpus-vblk

integration: all guest
	pytest-3 -v tests/integration

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory guest
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory integration

run: deps
	@$(MAKE) --no-print-directory all guest
	$(BUILD)/mball run $(CONFIG)

bench: deps all guest
	/usr/bin/python3 tests/bench/boot
	/usr/bin/python3 tests/bench/eight
	/usr/bin/python3 tests/bench/disk
	/usr/bin/python3 tests/bench/net
	@$(MAKE) --no-print-directory $(BUILD)/splash-host $(BUILD)/guest/splashos-direct.img
	/usr/bin/python3 tests/bench/splash

clean:
	rm -rf $(BUILD)/mon $(BUILD)/unit $(BUILD)/fuzz $(BUILD)/monitor.elf $(BUILD)/mball

# The NUMA miss-counter TCG plugin (issue 7; numa/DESIGN-NUMA.md): a host .so for QEMU's
# -plugin, built with the host compiler against our own declarations of the plugin API.
$(BUILD)/numa-plugin.so: numa/plugin/mbnuma.c numa/cachemodel.c $(wildcard numa/plugin/*.h) numa/cachemodel.h
	@mkdir -p $(BUILD)
	$(CC) -O2 -g -Wall -Wextra -Wno-unused-parameter -shared -fPIC -fvisibility=hidden -Inuma -o $@ numa/plugin/mbnuma.c numa/cachemodel.c
all: $(BUILD)/numa-plugin.so
# The plugin on real QEMU, a few seconds (numa/plugin/selftest/run.sh says what it checks).
.PHONY: numa-plugin-check
numa-plugin-check: $(BUILD)/numa-plugin.so
	@bash numa/plugin/selftest/run.sh $(BUILD)/numa-plugin.so
