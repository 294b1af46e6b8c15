#!/usr/bin/env python3
"""Size report of the firmware image: the library's share of flash and static RAM, the peak
heap of one registration, the budgets, where the flash goes, and the panic call sites left.

    firmware_size.py --images DIR [--qemu-report FILE] [--check]

DIR holds provision.elf (the image that links the library) and provision-nodps.elf (the same
image with every library call compiled out), each with its linker map (.elf.map), as
`make -C firmware` builds them. The library's share is the difference (arm-none-eabi-size):
flash = text + data, static RAM = data + bss. The peak heap comes from the QEMU run's report
(run_qemu_test.py --report): the arena's high-water mark (what the firmware must provide) and
the library's own counter (dps_heap_usage). --check exits 1 when a budget is missed."""

import argparse
import bisect
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict

CROSS = os.environ.get("CROSS", "arm-none-eabi-")
LIBRARY = "libdps_mqtt.a"
BUDGET_FLASH = 48 * 1024
BUDGET_STATIC_RAM = 1024
BUDGET_HEAP = 16 * 1024

# Functions whose only job is to panic (or to abort on allocation failure): a call to one of
# them is a panic path left in the image.
PANIC_TARGET = re.compile(
    r"^(core::panicking::|core::result::unwrap_failed|core::option::(unwrap|expect)_failed"
    r"|core::slice::index::|core::slice::.*len_mismatch_fail|core::str::slice_error_fail"
    r"|core::str::.*::slice_error_fail|core::cell::panic_already|core::panic::"
    r"|alloc::alloc::handle_alloc_error|alloc::raw_vec::(capacity_overflow|handle_error)"
    r"|alloc::.*::(capacity_overflow|handle_alloc_error)|rust_begin_unwind$"
    r"|__rust_alloc_error_handler"
    r"|core::fmt::.*::panic|.*::panic_fmt$)")
PRIMITIVES = {"u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128",
              "isize", "f32", "f64", "bool", "char", "str"}
BRANCH = re.compile(r"^(bl|blx|b|b\.w|b[a-z]{2}(\.w)?)$")


def tool(name):
    path = shutil.which(CROSS + name)
    if path is None:
        sys.exit(f"firmware_size: {CROSS}{name} not found (apt-get install gcc-arm-none-eabi)")
    return path


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def berkeley(elf):
    line = run(tool("size"), elf).splitlines()[1].split()
    return {"text": int(line[0]), "data": int(line[1]), "bss": int(line[2])}


def origin_of(path):
    """A readable name for an input file of the link."""
    m = re.match(r"^(.*?)([^/]+\.a)\((.+)\)$", path)
    if not m:
        return "firmware C (startup, board, modem, arena, main)"
    archive, member = m.group(2), m.group(3)
    if archive == LIBRARY:
        crate = member.split("-", 1)[0].split(".", 1)[0]
        return f"{LIBRARY}: {crate}"
    names = {"libc_nano.a": "newlib libc (nano)", "libc.a": "newlib libc",
             "librdimon_nano.a": "newlib rdimon (semihosting)",
             "librdimon.a": "newlib rdimon (semihosting)", "libgcc.a": "libgcc",
             "libm.a": "newlib libm", "libg_nano.a": "newlib libc (nano)"}
    return names.get(archive, archive)


def parse_map(path):
    """Input sections of the link: (address, size, kind, origin), kind text/data/bss."""
    sections = []
    with open(path) as f:
        lines = f.read().split("\n")
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        sys.exit(f"firmware_size: {path} is not a GNU ld map file")
    kind = None
    pending = None
    for line in lines[start + 1:]:
        out = re.match(r"^(\.\S+)(\s+0x[0-9a-f]+\s+0x[0-9a-f]+)?", line)
        if out and not line.startswith(" "):
            name = out.group(1)
            kind = ("bss" if name == ".bss" else "data" if name == ".data" else
                    None if re.match(r"^\.(debug|comment|ARM\.attributes|stab)", name) else "text")
            pending = None
            continue
        if kind is None:
            continue
        one = re.match(r"^ (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
        if one is None and pending is not None:
            one2 = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
            if one2:
                one = (pending, one2.group(1), one2.group(2), one2.group(3))
        elif one is not None:
            one = one.groups()
        pending = None
        if one is None:
            alone = re.match(r"^ (\.\S+|COMMON)$", line)
            if alone:
                pending = alone.group(1)
            continue
        name, addr, size, file = one
        if name == "*fill*" or int(size, 16) == 0:
            continue
        sections.append((int(addr, 16), int(size, 16), kind, origin_of(file.strip())))
    sections.sort()
    return sections


def by_origin(sections):
    totals = defaultdict(lambda: {"text": 0, "data": 0, "bss": 0})
    for _, size, kind, origin in sections:
        totals[origin][kind] += size
    return totals


def crate_of(name):
    """The crate a demangled Rust symbol belongs to (its first path segment, or the first
    type's for `<T as Trait>::f`); None for a C name."""
    if "::" not in name:
        return None
    s = name.lstrip("<&*[( ")
    for prefix in ("mut ", "const ", "dyn "):
        while s.startswith(prefix):
            s = s[len(prefix):].lstrip("<&*[( ")
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", s)
    if m is None:
        return "?"
    return "core" if m.group(0) in PRIMITIVES else m.group(0)  # `<u64>::fmt` and the like


class Locator:
    def __init__(self, sections):
        self.sections = sections
        self.starts = [s[0] for s in sections]

    def origin(self, addr):
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0:
            start, size, _, origin = self.sections[i]
            if addr < start + size:
                return origin
        return "?"


def owner(name, origin):
    """Who a symbol belongs to: a Rust crate, or the C origin."""
    crate = crate_of(name)
    if name.startswith("OUTLINED_FUNCTION_"):
        return "(machine-outlined code, any crate)"  # opt-level z's outliner
    if origin.startswith(LIBRARY):
        if crate is not None:
            return crate
        return origin.split(": ", 1)[1]  # the library's C exports, compiler_builtins' aeabi
    return origin


def crate_breakdown(elf, locate):
    """Flash bytes of named symbols from the library archive, by crate."""
    sizes = defaultdict(int)
    for line in run(tool("nm"), "-C", "-S", "--size-sort", elf).splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or parts[2] not in "tTrRdDwWvV":
            continue
        addr, size, name = int(parts[0], 16), int(parts[1], 16), parts[3]
        if addr >= 0x20000000:
            continue
        origin = locate.origin(addr)
        if origin.startswith(LIBRARY):
            sizes[owner(name, origin)] += size
    return sizes


def panic_sites(elf, locate):
    """Calls into panicking functions, by the calling function's crate; and trap instructions
    (udf), which is what panics become with panic_immediate_abort."""
    calls = defaultdict(int)
    traps = defaultdict(int)
    targets = set()
    sites = []
    func, func_owner = None, None
    for line in run(tool("objdump"), "-d", "-C", "--no-show-raw-insn", elf).splitlines():
        head = re.match(r"^([0-9a-f]+) <(.+)>:$", line)
        if head:
            func = head.group(2)
            origin = locate.origin(int(head.group(1), 16))
            func_owner = owner(func, origin) if origin.startswith(LIBRARY) else None
            continue
        if func_owner is None:
            continue
        ins = re.match(r"^\s+[0-9a-f]+:\s+(\S+)\s*(.*)$", line)
        if not ins:
            continue
        op, args = ins.groups()
        if op == "udf":
            traps[func_owner] += 1
            continue
        if not BRANCH.match(op):
            continue
        target = re.search(r"<(.+?)(\+0x[0-9a-f]+)?>\s*$", args)
        if target is None or not PANIC_TARGET.match(target.group(1)):
            continue
        if PANIC_TARGET.match(func):
            continue  # one panic function calling the next: not a site of its own
        calls[func_owner] += 1
        targets.add(target.group(1))
        sites.append((func_owner, func, target.group(1)))
    return calls, traps, sorted(targets), sites


def kib(n):
    return f"{n:>7} B ({n / 1024:5.1f} KiB)"


def main():
    global LIBRARY
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--qemu-report", help="run_qemu_test.py --report output")
    ap.add_argument("--check", action="store_true", help="exit 1 when a budget is missed")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--list-panics", action="store_true",
                    help="list the library crate's own panic call sites")
    ap.add_argument("--library", default="libdps_mqtt.a", help="the library archive's file name")
    args = ap.parse_args()
    LIBRARY = args.library
    with_elf = os.path.join(args.images, "provision.elf")
    without_elf = os.path.join(args.images, "provision-nodps.elf")

    w, wo = berkeley(with_elf), berkeley(without_elf)
    share = {k: w[k] - wo[k] for k in w}
    flash = share["text"] + share["data"]
    static_ram = share["data"] + share["bss"]
    print("== firmware size: the library's share (provision.elf minus provision-nodps.elf) ==")
    print(f"{'':28}{'text':>9}{'data':>9}{'bss':>9}")
    for label, v in (("with the library", w), ("without the library", wo),
                     ("the library's share", share)):
        print(f"{label:28}{v['text']:>9}{v['data']:>9}{v['bss']:>9}")

    heap = lib_peak = None
    report = {}
    if args.qemu_report:
        with open(args.qemu_report) as f:
            report = json.load(f)
        heap = report.get("arena_high_water")
        lib_peak = report.get("library_peak_heap")
    results = [("flash (text + data)", flash, BUDGET_FLASH),
               ("static RAM (data + bss)", static_ram, BUDGET_STATIC_RAM),
               ("peak heap, one registration", heap, BUDGET_HEAP)]
    print("\n== budgets (TLS offload build) ==")
    missed = []
    for label, value, budget in results:
        if value is None:
            print(f"{label:30} not measured (no --qemu-report)   budget {kib(budget)}")
            missed.append(label)
            continue
        verdict = "ok" if value <= budget else "OVER BUDGET"
        print(f"{label:30}{kib(value)}   budget {kib(budget)}   {verdict}")
        if value > budget:
            missed.append(label)
    if heap is not None:
        print(f"  (the arena's high-water mark, rounded to its 8-byte grain; the library's own "
              f"counter says {lib_peak} B; arena {report.get('arena_size')} B, extent "
              f"{report.get('arena_extent')} B; stack peak {report.get('stack_peak')} B)")

    sec_w, sec_wo = parse_map(with_elf + ".map"), parse_map(without_elf + ".map")
    ow, owo = by_origin(sec_w), by_origin(sec_wo)
    print("\n== flash and static RAM by origin: difference between the images (linker maps) ==")
    print(f"{'':46}{'flash':>8}{'RAM':>8}")
    rows = []
    for origin in sorted(set(ow) | set(owo)):
        empty = {"text": 0, "data": 0, "bss": 0}
        a, b = ow.get(origin, empty), owo.get(origin, empty)
        d_flash = a["text"] + a["data"] - b["text"] - b["data"]
        d_ram = a["data"] + a["bss"] - b["data"] - b["bss"]
        if d_flash or d_ram:
            rows.append((d_flash, d_ram, origin))
    for d_flash, d_ram, origin in sorted(rows, reverse=True):
        print(f"{origin:46}{d_flash:>8}{d_ram:>8}")
    print(f"{'(sum; the size tool counts alignment too)':46}{sum(r[0] for r in rows):>8}"
          f"{sum(r[1] for r in rows):>8}")

    locate = Locator(sec_w)
    crates = crate_breakdown(with_elf, locate)
    lib_flash = sum(v["text"] + v["data"] for k, v in ow.items() if k.startswith(LIBRARY))
    named = sum(crates.values())
    print(f"\n== flash from {LIBRARY} by crate (named symbols, arm-none-eabi-nm -C) ==")
    for name, size in sorted(crates.items(), key=lambda kv: -kv[1]):
        print(f"{name:46}{size:>8}")
    print(f"{'(unnamed: constants, string literals, tables)':46}{lib_flash - named:>8}")
    print("  With LTO, code inlined from a dependency is counted in the crate of the function it"
          " was inlined into.")

    calls, traps, targets, sites = panic_sites(with_elf, locate)
    crate = LIBRARY[3:-2] if LIBRARY.startswith("lib") and LIBRARY.endswith(".a") else LIBRARY
    ours = calls.get(crate, 0)
    print("\n== panic call sites left in the image (arm-none-eabi-objdump -d) ==")
    print(f"calls into panicking functions: {sum(calls.values())} "
          f"(from {crate}: {ours}, from dependencies and core/alloc: {sum(calls.values()) - ours})")
    for caller, n in sorted(calls.items(), key=lambda kv: -kv[1]):
        print(f"  {caller:44}{n:>8}")
    if targets:
        print("  targets: " + ", ".join(targets))
    if args.list_panics:
        for caller_crate, func, target in sites:
            if caller_crate == crate:
                print(f"  site: {func}\n     -> {target}")
    if traps:
        print(f"trap instructions (udf: aborts, or panics under panic_immediate_abort): "
              f"{sum(traps.values())} ({', '.join(f'{k} {v}' for k, v in sorted(traps.items()))})")
    print("  A call site is counted in the function it sits in after inlining: a dependency's"
          f" check inlined into {crate} counts as {crate}.")

    figures = {"crate": crate, "flash": flash, "static_ram": static_ram, "peak_heap": heap,
               "library_peak_heap": lib_peak, "share": share, "with": w, "without": wo,
               "panic_calls": dict(calls), "panic_calls_total": sum(calls.values()),
               "traps": dict(traps), "crates": dict(crates)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1, sort_keys=True)
    if missed:
        print(f"\nbudgets missed or not measured: {', '.join(missed)}")
        return 1 if args.check else 0
    print("\nall budgets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
