"""Static analysis of pickles, torch zip archives and legacy torch files: nothing is ever unpickled.

The walker below reads opcodes one by one (its own loop, not `pickletools.genops`, so that every
length is checked against the bytes left before anything is read) and keeps a *symbolic* stack:
strings it can read, imported globals, results of calls, and opaque data. That is enough to

* resolve `GLOBAL`, `INST` and `STACK_GLOBAL` (including operands fetched back from the memo,
  the usual obfuscation) and judge each import against `allowlist.ALLOWED_IMPORTS`;
* flag `STACK_GLOBAL` whose operands are not constant strings (`unresolved-import`), calls whose
  callee is not an imported global (`dynamic-call`, e.g. `getattr(os, "system")(...)`), `BUILD` or
  item-setting on an imported object itself (`unsafe-build`), and `EXT1/2/4` (`extension-opcode`).

At each step the walker follows the most permissive of CPython's readers (C `_pickle`, and the
pure-Python `pickle._Unpickler` that joblib uses): it stops only where every real unpickler would
stop with an error, so everything a real unpickler could execute has been looked at. C `_pickle`
reading a file object without `peek()` (io.BytesIO: what torch.load hands it for `data.pkl`) sees
different opcodes than a front-to-back reader when an argument straddles the end of a FRAME;
`_stream.DroppingView` reproduces that reading, and a stream is walked both ways when they differ
(tests/unit/scanning/test_fuzz.py checks, against the real unpicklers, that no import is missed).

A parse error after something effectful is `malformed` (warning); before anything effectful the
file is `not-a-pickle` (info: loading it fails before doing anything). Running out of the work
budget (`PickleLimits`) is `scan-limit` (critical): a loader would still execute the unread rest.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, BinaryIO

from commons.scanning._stream import ByteStream, DroppingView, Truncated
from commons.scanning.allowlist import classify_import
from commons.scanning.findings import Finding, ScanResult, Severity

__all__ = ["PickleLimits", "scan_pickle", "scan_pickle_bytes"]


@dataclass(frozen=True)
class PickleLimits:
    """Work budget for one file, so hostile input costs bounded time and memory."""

    max_ops: int = 2_500_000  # opcodes over all pickles, members and passes of a file (~3 s at worst)
    max_string: int = 4096  # longest string or text line whose value is kept (longer: "unknown")
    max_pickles: int = 8  # pickles read back to back from one stream
    max_members: int = 256  # .pkl members scanned in one zip
    max_findings: int = 50  # findings per file before the rest is summarised


class _ParseError(Exception):
    """The real unpickler would raise here too."""


class _LimitError(Exception):
    """Our budget ran out; the rest of the stream is not analysed."""


# -- symbolic values ---------------------------------------------------------------------------


class _Str:
    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value  # None: a string we did not keep (too long)


class _Global:
    __slots__ = ("allowed", "extension", "name")

    def __init__(self, name: str | None, allowed: bool, extension: str | None = None) -> None:
        self.name = name  # None: an import we could not resolve (already reported)
        self.allowed = allowed
        self.extension = extension  # "EXTn code c": loaded from copyreg's registry, unknown until called


class _Obj:
    __slots__ = ("origin", "trusted")

    def __init__(self, origin: str, trusted: bool) -> None:
        self.origin = origin
        self.trusted = trusted  # built by an allowed callable from checked arguments


class _Opaque:
    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what


class _Data:
    __slots__ = ()


_DATA = _Data()
_Value = _Str | _Global | _Obj | _Opaque | _Data


def _describe(v: _Value) -> str:
    if isinstance(v, _Obj):
        return f"the result of calling {v.origin}"
    if isinstance(v, _Str):
        return "a string" if v.value is None else f"the string {v.value[:60]!r}"
    if isinstance(v, _Global):
        return v.name or "an unresolved import"
    if isinstance(v, _Opaque):
        return v.what
    return "a data value (number, bytes, container)"


# -- per-file report ---------------------------------------------------------------------------


@dataclass
class _ImportUse:
    verdict: str
    where: str
    pos: int
    written_as: str | None
    used_by: set[str] = field(default_factory=set)


class _Report:
    """Findings of one file, deduplicated: one finding per offending import."""

    def __init__(self, limits: PickleLimits) -> None:
        self.limits = limits
        self.imports: dict[str, _ImportUse] = {}
        self.findings: list[Finding] = []
        self.dropped = 0
        self.ops = 0  # opcodes walked over the whole file, all passes and members

    def add(self, kind: str, severity: Severity, message: str, detail: str | None = None) -> None:
        if any(f.kind == kind and f.message == message and f.detail == detail for f in self.findings):
            return  # the second reading mode usually finds the same things
        if len(self.findings) >= self.limits.max_findings:
            self.dropped += 1
            return
        self.findings.append(Finding(kind, severity, message, detail))

    def result(self, path: str, scanner: str) -> ScanResult:
        out: list[Finding] = []
        for name, use in sorted(self.imports.items()):
            if use.verdict == "allowed" or use.verdict == "torchscript":
                continue
            detail = f"referenced at byte {use.pos} of {use.where}"
            if use.written_as:
                detail += f" (written as {use.written_as})"
            if use.used_by:
                detail += "; used by " + ", ".join(sorted(use.used_by))
            if use.verdict == "ml-class":
                out.append(Finding("unknown-import", Severity.WARNING,
                                   f"imports {name}: a class from an ML library, not on the allowlist; "
                                   "loading runs that library's code", detail))  # fmt: skip
            else:
                out.append(Finding("disallowed-import", Severity.CRITICAL,
                                   f"imports {name}, which is not on the checkpoint allowlist", detail))  # fmt: skip
        findings = out[: self.limits.max_findings] + self.findings
        dropped = self.dropped + max(0, len(out) - self.limits.max_findings)
        if dropped:
            findings.append(Finding("truncated-report", Severity.INFO, f"{dropped} further findings not listed"))
        return ScanResult(path=path, scanner=scanner, findings=tuple(findings), imports=tuple(sorted(self.imports)))


# -- the opcode walker -------------------------------------------------------------------------

_U1 = struct.Struct("<B")
_U2 = struct.Struct("<H")
_I4 = struct.Struct("<i")
_U4 = struct.Struct("<I")
_U8 = struct.Struct("<Q")

_EFFECTFUL = frozenset(b"cRibo\x81\x82\x83\x84\x92\x93PQ")
# Opcodes that push one plain value after a fixed-size argument: BININT1, BININT2, BININT, BINFLOAT,
# NONE, NEWTRUE, NEWFALSE, EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT, EMPTY_SET.
_PUSH_FIXED = {0x4B: 1, 0x4D: 2, 0x4A: 4, 0x47: 8, 0x4E: 0, 0x88: 0, 0x89: 0, 0x29: 0, 0x5D: 0, 0x7D: 0, 0x8F: 0}
_HIGHEST_PROTOCOL = 5


class _Walker:
    """Walks one or more pickles from a stream, feeding a `_Report`."""

    def __init__(self, report: _Report, where: str, extra_allowed: Callable[[str], bool] | None = None) -> None:
        self.report = report
        self.where = where
        self.extra_allowed = extra_allowed
        self.effectful = False  # did the current pickle do anything but build data?
        self.start = 0  # offset where the current pickle began
        # Kept across consecutive pickles: an `Unpickler` reused for several `load()` calls keeps its memo.
        self.memo: dict[int, _Value] = {}

    # helpers -----------------------------------------------------------------------------------

    def _import(self, module: str, name: str, op: str, pos: int, proto: int) -> _Global:
        written = f"{module}.{name}"
        if proto < 3:
            # CPython maps Python 2 names (`__builtin__`, `copy_reg`, ...) when fix_imports is on, the default.
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        verdict: str = classify_import(module, name)
        if verdict != "allowed" and self.extra_allowed is not None and "." not in name and self.extra_allowed(full):
            verdict = "torchscript"
        if full not in self.report.imports:
            self.report.imports[full] = _ImportUse(verdict, self.where, pos, written if written != full else None)
        return _Global(full, verdict in ("allowed", "torchscript"))

    def _call(self, fn: _Value, op: str, pos: int) -> _Obj:
        if isinstance(fn, _Global):
            if fn.extension is not None:
                loaded = fn.extension.replace(" code", " loads copyreg extension code")
                self.report.add("extension-opcode", Severity.CRITICAL,
                                f"{op} calls what {loaded} returns: an import that cannot be checked statically",
                                f"byte {pos} of {self.where}")  # fmt: skip
                return _Obj("an extension-registry object", False)
            if fn.name is None:
                return _Obj("an unresolved import", False)
            if not fn.allowed:
                self.report.imports[fn.name].used_by.add(op)
            return _Obj(fn.name, fn.allowed)
        self.report.add("dynamic-call", Severity.CRITICAL,
                        f"{op} calls {_describe(fn)}, not an imported global",
                        f"byte {pos} of {self.where}")  # fmt: skip
        return _Obj(_describe(fn), False)

    def _mutate(self, target: _Value, op: str, pos: int) -> None:
        if isinstance(target, _Global) and target.name is not None:
            self.report.add("unsafe-build", Severity.CRITICAL,
                            f"{op} modifies the imported object {target.name} itself",
                            f"byte {pos} of {self.where}")  # fmt: skip
        elif op == "BUILD" and isinstance(target, _Opaque):
            self.report.add("unsafe-build", Severity.CRITICAL, f"BUILD sets state on {target.what}",
                            f"byte {pos} of {self.where}")  # fmt: skip

    # the loop ----------------------------------------------------------------------------------

    def walk(self, src: ByteStream) -> tuple[bool, int]:
        """Walk one pickle up to STOP. Returns (effectful, start offset); raises _ParseError/_LimitError."""
        limits = self.report.limits
        memo = self.memo
        stack: list[_Value] = []
        metastack: list[list[_Value]] = []
        proto = 0
        self.effectful = False
        self.start = src.offset

        def pop() -> _Value:
            if not stack:
                raise _ParseError("unpickling stack underflow")
            return stack.pop()

        def top() -> _Value:
            if not stack:
                raise _ParseError("unpickling stack underflow")
            return stack[-1]

        def pop_mark() -> list[_Value]:
            nonlocal stack
            if not metastack:
                raise _ParseError("could not find MARK")
            items = stack
            stack = metastack.pop()
            return items

        def line() -> bytes | None:
            """A text argument (None: too long to keep), with C `_pickle` strictness at EOF."""
            raw, complete = src.readline(limits.max_string)
            if not complete:
                raise _ParseError("pickle data was truncated (line without newline)")
            return raw

        def name_line(op: str) -> str:
            # pickle._Unpickler (used by joblib, for one) accepts a last line cut by EOF and drops its
            # last character, *then imports*; C _pickle refuses. Follow the more permissive reader.
            raw, complete = src.readline(limits.max_string)
            if raw is None:
                self.report.add("unresolved-import", Severity.CRITICAL,
                                f"{op} names a module or attribute longer than {limits.max_string} bytes",
                                f"byte {pos} of {self.where}")  # fmt: skip
                raw = b"?"
            elif not complete:
                raw = raw[:-1]
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _ParseError(f"{op} name is not UTF-8") from exc

        def string(n: int, decode: Callable[[bytes], str] | None) -> _Value:
            if n > limits.max_string:
                src.skip(n)
                return _Str(None) if decode is not None else _DATA
            raw = src.read(n)
            if decode is None:
                return _DATA
            try:
                return _Str(decode(raw))
            except UnicodeDecodeError as exc:
                raise _ParseError("string is not valid UTF-8") from exc

        def memo_get(idx: int) -> _Value:
            try:
                return memo[idx]
            except KeyError:
                raise _ParseError(f"memo key {idx} not found") from None

        def int_line() -> int:
            raw = line()
            try:
                return int(raw if raw is not None else b"x")
            except ValueError:
                raise _ParseError("bad memo index") from None

        utf8: Callable[[bytes], str] = lambda raw: raw.decode("utf-8", "surrogatepass")  # noqa: E731
        latin1: Callable[[bytes], str] = lambda raw: raw.decode("latin-1")  # noqa: E731

        base = src.pos - src.offset  # findings give offsets inside the stream
        read1 = src.read1
        skip = src.skip
        report = self.report
        while True:
            pos = src.pos - base
            op = read1()
            if op < 0:
                raise _ParseError("pickle data was truncated (no STOP)")
            report.ops += 1
            if report.ops > limits.max_ops:
                raise _LimitError(f"more than {limits.max_ops} opcodes")
            size = _PUSH_FIXED.get(op)
            if size is not None:  # numbers, None, bools, empty containers: the bulk of big pickles
                if size:
                    skip(size)
                stack.append(_DATA)
                continue
            if op in _EFFECTFUL:
                self.effectful = True

            if op == 0x71:  # BINPUT
                memo[src.read(1)[0]] = top()
            elif op == 0x68:  # BINGET
                stack.append(memo_get(src.read(1)[0]))
            elif op == 0x58:  # BINUNICODE
                stack.append(string(_U4.unpack(src.read(4))[0], utf8))
            elif op == 0x8C:  # SHORT_BINUNICODE
                stack.append(string(src.read(1)[0], utf8))
            elif op == 0x94:  # MEMOIZE
                memo[len(memo)] = top()
            elif op == 0x28:  # MARK
                metastack.append(stack)
                stack = []
            elif op in (0x74, 0x64, 0x6C, 0x91):  # TUPLE, DICT, LIST, FROZENSET
                pop_mark()
                stack.append(_DATA)
            elif op in (0x85, 0x86, 0x87):  # TUPLE1-3
                for _ in range(op - 0x84):
                    pop()
                stack.append(_DATA)
            elif op == 0x52:  # REDUCE
                pop()
                stack.append(self._call(pop(), "REDUCE", pos))
            elif op == 0x81:  # NEWOBJ
                pop()
                stack.append(self._call(pop(), "NEWOBJ", pos))
            elif op == 0x92:  # NEWOBJ_EX
                pop()
                pop()
                stack.append(self._call(pop(), "NEWOBJ_EX", pos))
            elif op == 0x62:  # BUILD
                pop()
                self._mutate(top(), "BUILD", pos)
            elif op == 0x73:  # SETITEM
                pop()
                pop()
                self._mutate(top(), "SETITEM", pos)
            elif op == 0x61:  # APPEND
                pop()
                self._mutate(top(), "APPEND", pos)
            elif op in (0x75, 0x65, 0x90):  # SETITEMS, APPENDS, ADDITEMS
                items = pop_mark()
                if op == 0x75 and len(items) % 2:
                    raise _ParseError("odd number of items for SETITEMS")
                name = {0x75: "SETITEMS", 0x65: "APPENDS", 0x90: "ADDITEMS"}[op]
                self._mutate(top(), name, pos)
            elif op == 0x63:  # GLOBAL
                module = name_line("GLOBAL")
                name = name_line("GLOBAL")
                stack.append(self._import(module, name, "GLOBAL", pos, proto))
            elif op == 0x93:  # STACK_GLOBAL
                name_v = pop()
                module_v = pop()
                if (isinstance(module_v, _Str) and module_v.value is not None
                        and isinstance(name_v, _Str) and name_v.value is not None):  # fmt: skip
                    stack.append(self._import(module_v.value, name_v.value, "STACK_GLOBAL", pos, proto))
                else:
                    self.report.add("unresolved-import", Severity.CRITICAL,
                                    f"STACK_GLOBAL imports a name that is not a constant string "
                                    f"(module: {_describe(module_v)}; name: {_describe(name_v)})",
                                    f"byte {pos} of {self.where}")  # fmt: skip
                    stack.append(_Global(None, False))
            elif op == 0x69:  # INST
                module = name_line("INST")
                name = name_line("INST")
                g = self._import(module, name, "INST", pos, proto)  # imported before the MARK is looked for
                pop_mark()
                stack.append(self._call(g, "INST", pos))
            elif op == 0x6F:  # OBJ
                items = pop_mark()
                if not items:
                    raise _ParseError("unpickling stack underflow")
                stack.append(self._call(items[0], "OBJ", pos))
            elif op == 0x80:  # PROTO
                proto = src.read(1)[0]
                if proto > _HIGHEST_PROTOCOL:
                    raise _ParseError(f"unsupported pickle protocol: {proto}")
            elif op == 0x95:  # FRAME: a read-ahead hint, except for C _pickle on unbuffered files
                n = _U8.unpack(src.read(8))[0]
                if n > sys.maxsize:
                    raise _ParseError("frame size > sys.maxsize")
                src.frame(n)
            elif op == 0x2E:  # STOP
                pop()
                return self.effectful, self.start
            elif op == 0x55:  # SHORT_BINSTRING
                stack.append(string(src.read(1)[0], latin1))
            elif op == 0x54:  # BINSTRING
                stack.append(string(_U4.unpack(src.read(4))[0], latin1))
            elif op == 0x8D:  # BINUNICODE8
                stack.append(string(_U8.unpack(src.read(8))[0], utf8))
            elif op in (0x43, 0x42, 0x8E, 0x96):  # SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8
                size = {0x43: 1, 0x42: 4, 0x8E: 8, 0x96: 8}[op]
                n = int.from_bytes(src.read(size), "little")
                src.skip(n)
                stack.append(_DATA)
            elif op == 0x8A:  # LONG1
                src.skip(src.read(1)[0])
                stack.append(_DATA)
            elif op == 0x8B:  # LONG4
                n = _I4.unpack(src.read(4))[0]
                if n < 0:
                    raise _ParseError("LONG pickle has negative byte count")
                src.skip(n)
                stack.append(_DATA)
            elif op in (0x46, 0x49, 0x4C):  # FLOAT, INT, LONG (text)
                line()
                stack.append(_DATA)
            elif op == 0x53:  # STRING
                raw = line()
                if raw is None:
                    stack.append(_Str(None))
                    continue
                if len(raw) < 2 or raw[0] != raw[-1] or raw[0] not in b"'\"":
                    raise _ParseError("the STRING opcode argument must be quoted")
                try:
                    decoded: bytes = codecs.escape_decode(raw[1:-1])[0]
                except ValueError as exc:
                    raise _ParseError("bad STRING escape") from exc
                stack.append(_Str(decoded.decode("latin-1")) if len(decoded) <= limits.max_string else _Str(None))
            elif op == 0x56:  # UNICODE
                raw = line()
                if raw is None:
                    stack.append(_Str(None))
                    continue
                try:
                    value = codecs.raw_unicode_escape_decode(raw)[0]
                except UnicodeDecodeError as exc:
                    raise _ParseError("bad UNICODE escape") from exc
                stack.append(_Str(value) if len(value) <= limits.max_string else _Str(None))
            elif op == 0x6A:  # LONG_BINGET
                stack.append(memo_get(_U4.unpack(src.read(4))[0]))
            elif op == 0x72:  # LONG_BINPUT
                memo[_U4.unpack(src.read(4))[0]] = top()
            elif op == 0x67:  # GET
                stack.append(memo_get(int_line()))
            elif op == 0x70:  # PUT
                idx = int_line()
                if idx < 0:
                    raise _ParseError("negative PUT argument")
                memo[idx] = top()
            elif op == 0x30:  # POP
                if stack:
                    stack.pop()
                elif metastack:
                    stack = metastack.pop()
                else:
                    raise _ParseError("unpickling stack underflow")
            elif op == 0x31:  # POP_MARK
                pop_mark()
            elif op == 0x32:  # DUP
                stack.append(top())
            elif op == 0x50:  # PERSID
                line()
                stack.append(_Opaque("a persistent-load object"))
            elif op == 0x51:  # BINPERSID
                pop()
                stack.append(_Opaque("a persistent-load object"))
            elif op in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
                code = {0x82: _U1, 0x83: _U2, 0x84: _I4}[op].unpack(src.read({0x82: 1, 0x83: 2, 0x84: 4}[op]))[0]
                if code <= 0:
                    raise _ParseError("EXT specifies code <= 0")
                # A warning on its own: EXT only resolves through copyreg's extension registry, which is
                # empty unless the loading program filled it (random bytes in a .bin often start 0x82-0x84).
                # Calling what it loaded (REDUCE, OBJ, BUILD) is what turns it critical, below.
                self.report.add("extension-opcode", Severity.WARNING,
                                f"EXT{ {0x82: 1, 0x83: 2, 0x84: 4}[op]} loads copyreg extension code {code}: "
                                "an import that cannot be checked statically",
                                f"byte {pos} of {self.where}")  # fmt: skip
                stack.append(_Global(None, False, f"EXT{ {0x82: 1, 0x83: 2, 0x84: 4}[op]} code {code}"))
            elif op == 0x97:  # NEXT_BUFFER
                stack.append(_Opaque("an out-of-band buffer"))
            elif op == 0x98:  # READONLY_BUFFER
                top()
            else:
                raise _ParseError(f"invalid opcode 0x{op:02x}")


# -- stream-level drivers ----------------------------------------------------------------------

# torch's legacy (non-zip) format starts with this LONG1: the magic number 0x1950a86a20f9469cfc6c.
_TORCH_LEGACY_MAGIC = b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_TORCH_LEGACY_PICKLES = 5  # magic, protocol version, sys_info, the object, storage keys


def _walk_pass(src: ByteStream, walker: _Walker, where: str) -> None:
    """Walk the pickle(s) of one stream in one reading mode, turning parse problems into findings."""
    report = walker.report
    limits = report.limits
    head = src.peek(32)
    expected = 1
    index = 0
    while True:
        if index >= limits.max_pickles:
            report.add("scan-limit", Severity.CRITICAL,
                       f"{where} holds more than {limits.max_pickles} pickles; the rest is not verified")  # fmt: skip
            return
        try:
            walker.walk(src)
        except _LimitError as exc:
            report.add("scan-limit", Severity.CRITICAL, f"stopped scanning {where}: {exc}; the rest is not verified",
                       f"at byte {src.offset}")  # fmt: skip
            return
        except (_ParseError, Truncated, struct.error, IndexError) as exc:
            if index >= expected:
                report.add("trailing-data", Severity.INFO,
                           f"data after the last complete pickle of {where} is not a pickle ({exc})",
                           f"from byte {walker.start}")  # fmt: skip
            elif walker.effectful or index > 0:
                report.add("malformed", Severity.WARNING, f"{where} is not a well-formed pickle: {exc}",
                           f"pickle #{index + 1} from byte {walker.start}, error at byte {src.offset}")  # fmt: skip
            else:
                report.add("not-a-pickle", Severity.INFO,
                           f"{where} does not parse as a pickle ({exc}); unpickling it fails before doing anything",
                           f"error at byte {src.offset}")  # fmt: skip
            return
        except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile) as exc:
            # Read errors from the underlying file (e.g. a zip member failing its CRC check).
            report.add("unreadable", Severity.CRITICAL, f"could not read {where}: {exc}", f"at byte {src.offset}")
            return
        index += 1
        src.finish()
        if index == 1 and _TORCH_LEGACY_MAGIC in head and src.offset <= 32:
            expected = _TORCH_LEGACY_PICKLES
        left = src.remaining()
        if left is not None and left <= 0:
            return
        if index < expected:
            continue
        if expected == _TORCH_LEGACY_PICKLES:
            return  # raw storage bytes follow the five pickles
        nxt = src.peek(2)
        if len(nxt) == 2 and nxt[0] == 0x80 and nxt[1] <= _HIGHEST_PROTOCOL:
            continue  # another pickle written back to back: scan it as well
        if nxt:
            report.add("trailing-data", Severity.INFO, f"{where} has data after its pickle that is not scanned",
                       f"from byte {src.offset}")  # fmt: skip
        return


def _walk_stream(open_view: Callable[[type[ByteStream]], ByteStream], report: _Report, where: str,
                 extra_allowed: Callable[[str], bool] | None = None) -> None:  # fmt: skip
    """Walk a stream the way C `_pickle` reads an unbuffered file (see `DroppingView`) and, if that
    ever differs from reading it front to back, linearly as well (pickle.loads, buffered files,
    pickle._Unpickler). Files written by `pickle` never differ, so they are walked once."""
    view = open_view(DroppingView)
    _walk_pass(view, _Walker(report, where, extra_allowed), where)
    if isinstance(view, DroppingView) and view.diverged:
        _walk_pass(open_view(ByteStream), _Walker(report, where, extra_allowed), where)


def _torchscript_name(name: str) -> bool:
    # In TorchScript archives `__torch__.*` are classes compiled from the archive's own code/ folder.
    return name.startswith("__torch__.") or name.startswith("torch.jit._pickle.")


def _scan_zip(fh: BinaryIO, path: str, report: _Report) -> None:
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        report.add("malformed-archive", Severity.CRITICAL,
                   f"starts like a torch zip archive but cannot be read as one: {exc}")  # fmt: skip
        return
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        # torch.load's own test (_is_torchscript_zip): such archives go to torch.jit.load, whose C++
        # unpickler resolves `__torch__.*` from the archive's code/ and never imports Python modules.
        torchscript = any(n.rsplit("/", 1)[-1] == "constants.pkl" for n in names)
        pickles = [i for i in infos if i.filename.lower().endswith(".pkl")]
        if torchscript:
            report.add("torchscript", Severity.WARNING,
                       "TorchScript archive: torch.jit.load compiles and runs the code/ it contains, "
                       "which this scanner does not verify")  # fmt: skip
        if not pickles:
            report.add("no-pickle", Severity.INFO, "zip archive without .pkl members: nothing to unpickle")
            return
        if len(pickles) > report.limits.max_members:
            limit = report.limits.max_members
            report.add(
                "scan-limit", Severity.CRITICAL, f"{len(pickles)} .pkl members; only the first {limit} are scanned"
            )
        for info in pickles[: report.limits.max_members]:
            opened: list[IO[bytes]] = []

            def open_member(
                cls: type[ByteStream], info: zipfile.ZipInfo = info, opened: list[IO[bytes]] = opened
            ) -> ByteStream:
                member = zf.open(info)
                opened.append(member)
                return cls(member, None, info.file_size)  # type: ignore[arg-type]

            try:
                _walk_stream(open_member, report, info.filename, _torchscript_name if torchscript else None)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError) as exc:
                report.add("malformed-archive", Severity.CRITICAL, f"cannot read member {info.filename}: {exc}")
            finally:
                for member in opened:
                    member.close()


def _is_tar(fh: BinaryIO) -> bool:
    """Would `tarfile.open(mode="r:")` (which torch.load tries before unpickling) accept the first header?

    Re-implements tarfile's header test (checksum over the 512-byte block) rather than calling
    `tarfile.open`, which may read a hostile GNU long-name header of any claimed size into memory.
    """
    fh.seek(0)
    block = fh.read(512)
    fh.seek(0)
    if len(block) < 512 or block == bytes(512):
        return False
    field = block[148:156]
    if field[0] in (0o200, 0o377):  # base-256 encoding, as tarfile.nti accepts
        stored = int.from_bytes(field[1:], "big") - (256**7 if field[0] == 0o377 else 0)
    else:
        digits = field.split(b"\0", 1)[0].strip()
        try:
            stored = int(digits or b"0", 8)
        except ValueError:
            return False
    unsigned = 256 + sum(block[:148]) + sum(block[156:])
    signed = 256 + sum(b - 256 if b > 127 else b for b in block[:148] + block[156:])
    return stored in (unsigned, signed)


def scan_pickle(
    fh: BinaryIO, size: int | None = None, path: str = "", limits: PickleLimits | None = None
) -> ScanResult:
    """Scan a pickle-based file: plain pickle, torch zip archive, or legacy torch file."""
    report = _Report(limits or PickleLimits())
    try:
        fh.seek(0)
        magic = fh.read(4)
        fh.seek(0)
        if magic == b"PK\x03\x04":
            # torch.load takes the zip path on exactly this check (torch.serialization._is_zipfile).
            _scan_zip(fh, path or "archive", report)
            return report.result(path, "pickle")
        if (size is None or size >= 512) and _is_tar(fh):
            # Still walked below as a plain pickle: other loaders would read it that way.
            report.add("unsupported-format", Severity.CRITICAL,
                       "legacy tar-based torch checkpoint (torch < 0.4): its interleaved pickles cannot be "
                       "verified; re-save it with a current torch")  # fmt: skip
        _walk_stream(lambda cls: cls(fh, 0, size), report, path or "pickle")
    except Exception as exc:  # a scanner must always answer; an unexpected error is itself a finding
        report.add("scanner-error", Severity.CRITICAL, f"scan failed: {type(exc).__name__}: {exc}")
    return report.result(path, "pickle")


def scan_pickle_bytes(data: bytes, path: str = "", limits: PickleLimits | None = None) -> ScanResult:
    """Convenience wrapper for in-memory data."""
    import io

    return scan_pickle(io.BytesIO(data), len(data), path, limits)
