"""Unified diffs parsed for the page."""

from __future__ import annotations

from commons.web.diffs import parse_diff

PATCH = """diff --git a/a.txt b/a.txt
index 1111111..2222222 100644
--- a/a.txt
+++ b/a.txt
@@ -1,3 +1,3 @@ heading
 one
-two
+TWO
 three
diff --git a/new.txt b/new.txt
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/new.txt
@@ -0,0 +1 @@
+hello
\\ No newline at end of file
diff --git a/gone.bin b/gone.bin
deleted file mode 100644
index 4444444..0000000
Binary files a/gone.bin and /dev/null differ
"""


def test_files_statuses_and_counts() -> None:
    diff = parse_diff(PATCH)
    assert [(f.path, f.status) for f in diff.files] == [("a.txt", "modified"), ("new.txt", "added"),
                                                       ("gone.bin", "deleted")]
    assert (diff.additions, diff.deletions) == (2, 1)
    assert diff.files[2].binary and not diff.truncated


def test_line_numbers() -> None:
    lines = parse_diff(PATCH).files[0].lines
    assert [(line.kind, line.text, line.old, line.new) for line in lines[1:]] == [
        ("ctx", "one", 1, 1), ("del", "two", 2, None), ("add", "TWO", None, 2), ("ctx", "three", 3, 3)]
    assert parse_diff(PATCH).files[1].lines[-1].kind == "note"


def test_long_diffs_are_cut() -> None:
    patch = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -0,0 +1,50 @@\n" + "".join(f"+{i}\n" for i in range(50))
    diff = parse_diff(patch, max_lines=10)
    assert diff.truncated and diff.files[0].additions == 50
    assert sum(1 for line in diff.files[0].lines if line.kind == "add") == 10
