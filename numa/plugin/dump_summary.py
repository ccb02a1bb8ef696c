#!/usr/bin/env python3
"""Where a run's remote misses went, from the NUMA plugin's MBNUMA_DUMP file.

  MBNUMA_DUMP=/tmp/d.bin build/mball run ... configs/numa-linux.conf
  numa/plugin/dump_summary.py /tmp/d.bin --nodes 4 --node-size 1G

Every machine page with misses is put in one kind, from its whole-run counts:
  private      one requesting node has >= 80 % of its misses (local or misplaced)
  read-shared  no write misses, two or more nodes with >= 10 % each (a replication candidate)
  write-shared write misses, two or more nodes with >= 10 % each
  scattered    the rest
and for each kind the table gives pages, misses, remote misses and the share of all remote
misses; "misplaced" are private pages whose node is not their main reader's. A page that
moved counts as two machine pages (the old one with the misses before the move)."""
import argparse
import array
import json
import sys


def size(s):
    units = {'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}
    return int(s[:-1]) * units[s[-1].lower()] if s[-1].lower() in units else int(s, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('dump')
    ap.add_argument('--nodes', type=int, required=True)
    ap.add_argument('--node-size', type=size, required=True)
    ap.add_argument('--top', type=int, default=10, help='hottest remote pages to list')
    ap.add_argument('--json', action='store_true', help='print {kind: [pages, misses, remote]} as JSON instead')
    a = ap.parse_args()
    pages = a.node_size // 4096
    kinds = {}
    top = []
    total_remote = 0
    with open(a.dump, 'rb') as f:
        for k in range(a.nodes):
            misses, writes, by = array.array('I'), array.array('I'), array.array('I')
            misses.fromfile(f, pages)
            writes.fromfile(f, pages)
            try:
                by.fromfile(f, pages * a.nodes)
            except EOFError:
                sys.exit('no per-node split in the dump: a plugin from before dump_summary.py')
            for p in range(pages):
                m = misses[p]
                if not m:
                    continue
                row = by[p * a.nodes:(p + 1) * a.nodes]
                remote = m - row[k]
                main_node = max(range(a.nodes), key=lambda n: row[n])
                sharers = sum(1 for n in range(a.nodes) if row[n] * 10 >= m)
                if row[main_node] * 100 >= 80 * m:
                    kind = 'private' if main_node == k else 'private misplaced'
                elif sharers >= 2:
                    kind = 'write-shared' if writes[p] else 'read-shared'
                else:
                    kind = 'scattered'
                e = kinds.setdefault(kind, [0, 0, 0])
                e[0] += 1
                e[1] += m
                e[2] += remote
                total_remote += remote
                if remote:
                    top.append((remote, k, p, m, writes[p], list(row)))
    if a.json:
        print(json.dumps(kinds))
        return
    print(f'{"kind":18} {"pages":>8} {"misses":>12} {"remote":>12} {"of remote":>9}')
    for kind in ('private', 'private misplaced', 'read-shared', 'write-shared', 'scattered'):
        e = kinds.get(kind, [0, 0, 0])
        print(f'{kind:18} {e[0]:8d} {e[1]:12,d} {e[2]:12,d} {100.0 * e[2] / max(total_remote, 1):8.1f}%')
    top.sort(reverse=True)
    print(f'\nhottest remote pages (machine address, node, misses, write misses, by node):')
    for remote, k, p, m, w, row in top[:a.top]:
        print(f'  {0x40000000 + (k * pages + p) * 4096:#x} node {k}: {m} misses ({remote} remote), {w} writes, {row}')


if __name__ == '__main__':
    main()
