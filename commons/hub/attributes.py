"""`.gitattributes`: the Hub's default file and which paths it sends to LFS (pure)."""

from __future__ import annotations

from typing import Any

import pathspec

# The Hub's initial .gitattributes for new repos: binary model/data formats go to LFS.
DEFAULT_GITATTRIBUTES = """\
*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.ftz filter=lfs diff=lfs merge=lfs -text
*.gguf filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.joblib filter=lfs diff=lfs merge=lfs -text
*.lfs.* filter=lfs diff=lfs merge=lfs -text
*.mlmodel filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.ot filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.rar filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
saved_model/**/* filter=lfs diff=lfs merge=lfs -text
*.tar.* filter=lfs diff=lfs merge=lfs -text
*.tar filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*.tgz filter=lfs diff=lfs merge=lfs -text
*.wasm filter=lfs diff=lfs merge=lfs -text
*.xz filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
"""


class LfsRules:
    """The `filter=lfs` patterns of a .gitattributes file (last matching line wins, as in git)."""

    def __init__(self, text: str) -> None:
        self._rules: list[tuple[pathspec.PathSpec[Any], bool]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            pattern, *attrs = line.split()
            if "filter=lfs" in attrs:
                on = True
            elif "-filter" in attrs or "!filter" in attrs or any(a.startswith("filter=") for a in attrs):
                on = False
            else:
                continue
            # git-lfs writes spaces as the POSIX class [[:space:]], which pathspec does not know.
            pattern = pattern.replace("[[:space:]]", "[ ]")
            self._rules.append((pathspec.PathSpec.from_lines("gitignore", [pattern]), on))

    def tracks(self, path: str) -> bool:
        result = False
        for spec, on in self._rules:
            if spec.match_file(path):
                result = on
        return result


def with_tracked_paths(text: str, paths: list[str]) -> str:
    """Add exact-path LFS lines for files stored in LFS that no pattern covers (as the Hub does)."""
    if not paths:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "".join(f"{_escape(p)} filter=lfs diff=lfs merge=lfs -text\n" for p in paths)


def _escape(path: str) -> str:
    # gitattributes patterns: escape glob characters and spaces so the line names exactly this path.
    out = []
    for ch in path:
        if ch in "*?[]\\ !#":
            out.append("\\" + ch if ch != " " else "[[:space:]]")
        else:
            out.append(ch)
    return "".join(out)
