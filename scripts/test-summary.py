#!/usr/bin/env python3
"""Count test results from meson testlog.json files: every TAP line of a TAP
test ("ok", "not ok", "# SKIP"), or the whole program's result otherwise.
Prints "N passed, N failed, N skipped"; exits 1 if anything failed or nothing ran."""
import json
import re
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        continue
    for line in lines:
        t = json.loads(line)
        result = t.get("result")
        tap = [l for l in (t.get("stdout") or "").splitlines()
               if re.match(r"^(not )?ok\b", l)]
        if tap:
            for l in tap:
                if re.search(r"#\s*SKIP", l, re.I):
                    skipped += 1
                elif l.startswith("not ok"):
                    failed += 1
                else:
                    passed += 1
            # a crash after the last TAP line still fails the program
            if result not in ("OK", "SKIP", "EXPECTEDFAIL") and not any(
                    l.startswith("not ok") for l in tap):
                failed += 1
        elif result == "OK" or result == "EXPECTEDFAIL":
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
