"""ABI promises seen from a binding (docs/ABI.md): version and SOVERSION,
constants and struct layouts mirrored by the Python package, every
function of skc.h declared for ctypes, error codes mapped to classes, and
the payload convention shared with the C helpers."""

import ctypes
import os
import re
import subprocess
import sys
import unittest

import skctest
from skctest import skc, SOURCE_DIR

from skc import _lib, errors

HEADER = os.path.join(SOURCE_DIR, "include", "skc", "skc.h")
sys.path.insert(0, os.path.join(SOURCE_DIR, "test", "abi"))
import check_symbols  # noqa: E402


def header_macros():
    with open(HEADER, encoding="utf-8") as f:
        text = f.read()
    out = {}
    for m in re.finditer(r"^#define (SKC_VERSION_(?:MAJOR|MINOR|PATCH)) "
                         r"(\d+)", text, re.M):
        out[m.group(1)] = int(m.group(2))
    out["SKC_VERSION_STRING"] = re.search(
        r'^#define SKC_VERSION_STRING "([^"]+)"', text, re.M).group(1)
    return out


def layout():
    exe = os.environ.get("SKC_LAYOUT")
    if not exe:
        exe = os.path.join(skctest.BUILD_DIR, "test", "abi",
                           "skc_abi_layout")
    out = subprocess.run([exe], check=True, capture_output=True,
                         text=True).stdout
    consts, sizes, fields = {}, {}, {}
    for line in out.splitlines():
        kind, name, *vals = line.split()
        if kind == "const":
            consts[name] = int(vals[0])
        elif kind == "size":
            sizes[name] = int(vals[0])
        elif kind == "field":
            fields[name] = (int(vals[0]), int(vals[1]))
    return consts, sizes, fields


class Version(unittest.TestCase):
    def test_runtime_version_matches_header(self):
        m = header_macros()
        number = (m["SKC_VERSION_MAJOR"] * 1000000 +
                  m["SKC_VERSION_MINOR"] * 1000 + m["SKC_VERSION_PATCH"])
        self.assertEqual(_lib.lib.skc_version(), number)
        self.assertEqual(skc.version(), (m["SKC_VERSION_MAJOR"],
                                         m["SKC_VERSION_MINOR"],
                                         m["SKC_VERSION_PATCH"]))
        self.assertEqual(skc.version_string(), m["SKC_VERSION_STRING"])
        self.assertEqual("%d.%d.%d" % skc.version(), m["SKC_VERSION_STRING"])
        # The binding was written for this header.
        self.assertEqual(skc.HEADER_VERSION, skc.version())
        # and pip packages it with that version (pyproject.toml).
        from skc import _version
        self.assertEqual(_version.__version__, m["SKC_VERSION_STRING"])

    def test_soversion_is_major(self):
        major = header_macros()["SKC_VERSION_MAJOR"]
        path = os.path.realpath(skc.LIBRARY)
        libdir = os.path.dirname(path)
        soname = "libskc.so.%d" % major
        link = os.path.join(libdir, soname)
        self.assertTrue(os.path.exists(link), "%s missing" % link)
        self.assertEqual(os.path.realpath(link), path)
        self.assertTrue(os.path.exists(os.path.join(libdir, "libskc.so")),
                        "the development link libskc.so is missing")
        out = subprocess.run(["readelf", "-d", path], check=True,
                             capture_output=True, text=True).stdout
        m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", out)
        self.assertIsNotNone(m, "no SONAME in %s" % path)
        self.assertEqual(m.group(1), soname)

    def test_loads_by_soname(self):
        # What ctypes.util.find_library/an installed package ends up doing.
        libdir = os.path.dirname(os.path.realpath(skc.LIBRARY))
        code = ("import ctypes; l = ctypes.CDLL('libskc.so.0'); "
                "l.skc_version.restype = ctypes.c_uint32; "
                "print(l.skc_version())")
        env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        out = subprocess.run([sys.executable, "-c", code], env=env,
                             check=True, capture_output=True,
                             text=True).stdout
        self.assertEqual(int(out), _lib.lib.skc_version())


class Loading(unittest.TestCase):
    """How `import skc` finds the library (docs/PYTHON.md)."""

    def run_import(self, env_extra, pkg_parent):
        env = {k: v for k, v in os.environ.items()
               if k not in ("SKC_LIBRARY", "LD_LIBRARY_PATH")}
        env.update(env_extra)
        env["PYTHONPATH"] = pkg_parent
        return subprocess.run(
            [sys.executable, "-c",
             "import skc; print(skc.LIBRARY); print(skc.version_string())"],
            env=env, capture_output=True, text=True, cwd="/")

    def installed_copy(self):
        # The package alone, outside the source tree, as an install has it.
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="skc-py-site-")
        self.addCleanup(shutil.rmtree, d, True)
        src = os.path.dirname(skc.__file__)
        shutil.copytree(src, os.path.join(d, "skc"),
                        ignore=shutil.ignore_patterns("__pycache__",
                                                      "_install.py"))
        return d

    def test_installed_package_finds_library_by_soname(self):
        libdir = os.path.dirname(os.path.realpath(skc.LIBRARY))
        r = self.run_import({"LD_LIBRARY_PATH": libdir},
                            self.installed_copy())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split()[1], skc.version_string())

    def test_install_hint_file(self):
        d = self.installed_copy()
        with open(os.path.join(d, "skc", "_install.py"), "w") as f:
            f.write("LIBRARY = %r\n" % os.path.realpath(skc.LIBRARY))
        r = self.run_import({}, d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split()[0], os.path.realpath(skc.LIBRARY))

    def test_bad_explicit_path_fails_clearly(self):
        r = self.run_import({"SKC_LIBRARY": "/nonexistent/libskc.so.0"},
                            self.installed_copy())
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError", r.stderr)
        self.assertIn("SKC_LIBRARY", r.stderr)
        self.assertIn("/nonexistent/libskc.so.0", r.stderr)

    def test_explicit_path(self):
        r = self.run_import({"SKC_LIBRARY": os.path.realpath(skc.LIBRARY)},
                            self.installed_copy())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split()[0], os.path.realpath(skc.LIBRARY))


class Mirror(unittest.TestCase):
    """The ctypes mirror equals what a C compiler sees in skc.h."""

    @classmethod
    def setUpClass(cls):
        cls.consts, cls.sizes, cls.fields = layout()

    def test_error_codes(self):
        for name, value in self.consts.items():
            if not re.match(r"SKC_E[A-Z]+$", name):
                continue
            cls = errors.CLASSES.get(value)
            self.assertIsNotNone(cls, "no Python class for %s" % name)
            self.assertEqual("SKC_" + cls.NAME, name)
            self.assertEqual(skc.errname(value), cls.NAME)
            self.assertTrue(issubclass(cls, skc.Error))
            self.assertIs(getattr(skc, cls.__name__), cls)
        n = sum(1 for k in self.consts if re.match(r"SKC_E[A-Z]+$", k))
        self.assertEqual(n, len(errors.CLASSES))

    def test_constants(self):
        c = self.consts
        self.assertEqual(c["SKC_CALLER_DRIVEN"], _lib.CALLER_DRIVEN)
        self.assertEqual(c["SKC_MSG_CALL"], _lib.MSG_CALL)
        self.assertEqual(c["SKC_MSG_SEND"], _lib.MSG_SEND)
        for lv in ("ERROR", "WARN", "INFO", "DEBUG"):
            self.assertEqual(c["SKC_LOG_" + lv], getattr(_lib, "LOG_" + lv))
            self.assertEqual(c["SKC_LOG_" + lv], getattr(skc, "LOG_" + lv))
        for t in ("NIL", "BOOL", "INT", "UINT", "FLOAT", "STR", "BIN",
                  "ARRAY", "MAP", "EXT"):
            self.assertEqual(c["SKC_T_" + t], getattr(_lib, "T_" + t))

    def check_struct(self, cname, cls):
        self.assertEqual(self.sizes[cname], ctypes.sizeof(cls),
                         "sizeof(%s)" % cname)
        names = [f[0] for f in cls._fields_]
        cfields = [k.split(".", 1)[1] for k in self.fields
                   if k.startswith(cname + ".")]
        self.assertEqual(names, cfields)
        for fname in names:
            off, size = self.fields["%s.%s" % (cname, fname)]
            desc = getattr(cls, fname)
            self.assertEqual((desc.offset, desc.size), (off, size),
                             "%s.%s" % (cname, fname))

    def test_node_opts_layout(self):
        self.check_struct("skc_node_opts", _lib.NodeOpts)

    def test_item_layout(self):
        self.check_struct("skc_item", _lib.Item)

    def test_every_function_declared(self):
        declared = check_symbols.header_functions(HEADER)
        for name in sorted(declared):
            f = getattr(_lib.lib, name)
            self.assertIsNotNone(f.argtypes, "%s: no argtypes" % name)


class Errors(unittest.TestCase):
    def test_strerror_and_names(self):
        self.assertEqual(skc.errname(0), "OK")
        self.assertEqual(skc.errname(-9999), "EUNKNOWN")
        self.assertEqual(skc.strerror(-9999), "unknown error")
        for code, cls in errors.CLASSES.items():
            e = errors.from_code(code, skc.strerror(code), "detail here")
            self.assertIs(type(e), cls)
            self.assertEqual(e.code, code)
            self.assertEqual(e.name, cls.NAME)
            self.assertIn("detail here", str(e))
            self.assertIn(cls.NAME, str(e))
            self.assertTrue(skc.strerror(code))

    def test_unknown_code_is_base_error(self):
        e = errors.from_code(-777, "x", "y")
        self.assertIs(type(e), skc.Error)
        self.assertEqual(e.name, "EUNKNOWN")

    def test_invalid_argument_is_value_error(self):
        self.assertTrue(issubclass(skc.InvalidArgument, ValueError))

    def test_errcheck_uses_last_error(self):
        # A real failure through errcheck: unpacking garbage.
        r = ctypes.c_void_p()
        data = b"\xc1"
        buf = ctypes.create_string_buffer(data, len(data))
        _lib.lib.skc_unpack_create(ctypes.byref(r), buf, len(data))
        try:
            item = _lib.Item()
            item.size = ctypes.sizeof(_lib.Item)
            with self.assertRaises(skc.ProtocolError) as cm:
                _lib.lib.skc_unpack_next(r, ctypes.byref(item))
            self.assertEqual(cm.exception.code, -12)
            self.assertEqual(cm.exception.name, "EPROTO")
        finally:
            _lib.lib.skc_unpack_destroy(r)


class Payload(unittest.TestCase):
    """skc.pack/unpack and the C helpers read each other's bytes."""

    def c_pack(self):
        L = _lib.lib
        p = ctypes.c_void_p()
        L.skc_pack_create(ctypes.byref(p))
        s = "héllo".encode()
        L.skc_pack_str(p, s, len(s))
        L.skc_pack_int(p, -5)
        L.skc_pack_uint(p, 2 ** 64 - 1)
        L.skc_pack_double(p, 1.5)
        L.skc_pack_bool(p, 1)
        L.skc_pack_nil(p)
        L.skc_pack_bin(p, b"\x00\xff", 2)
        L.skc_pack_array(p, 2)
        L.skc_pack_int(p, 1)
        L.skc_pack_int(p, 2)
        L.skc_pack_map(p, 1)
        L.skc_pack_str(p, b"k", 1)
        L.skc_pack_int(p, 3)
        n = ctypes.c_size_t()
        ptr = L.skc_pack_data(p, ctypes.byref(n))
        data = ctypes.string_at(ptr, n.value)
        L.skc_pack_destroy(p)
        return data

    def test_c_to_python(self):
        self.assertEqual(skc.unpack(self.c_pack()),
                         ["héllo", -5, 2 ** 64 - 1, 1.5, True, None,
                          b"\x00\xff", [1, 2], {"k": 3}])

    def test_python_to_c(self):
        data = skc.pack("héllo", -5, 2 ** 64 - 1, 1.5, True, None,
                        b"\x00\xff", [1, 2], {"k": 3})
        L = _lib.lib
        r = ctypes.c_void_p()
        buf = ctypes.create_string_buffer(data, len(data))
        L.skc_unpack_create(ctypes.byref(r), buf, len(data))
        got = []
        try:
            item = _lib.Item()
            item.size = ctypes.sizeof(_lib.Item)
            while L.skc_unpack_next(r, ctypes.byref(item)) == 1:
                t = item.type
                if t == _lib.T_STR:
                    got.append(ctypes.string_at(item.ptr, item.len).decode())
                elif t == _lib.T_BIN:
                    got.append(ctypes.string_at(item.ptr, item.len))
                elif t == _lib.T_INT:
                    got.append(item.i)
                elif t == _lib.T_UINT:
                    got.append(item.u)
                elif t == _lib.T_FLOAT:
                    got.append(item.d)
                elif t == _lib.T_BOOL:
                    got.append(bool(item.i))
                elif t == _lib.T_NIL:
                    got.append(None)
                elif t == _lib.T_ARRAY:
                    got.append(("array", item.count))
                elif t == _lib.T_MAP:
                    got.append(("map", item.count))
        finally:
            L.skc_unpack_destroy(r)
        self.assertEqual(got, ["héllo", -5, 2 ** 64 - 1, 1.5, True, None,
                               b"\x00\xff", ("array", 2), 1, 2, ("map", 1),
                               "k", 3])

    def test_round_trip_and_conventions(self):
        self.assertEqual(skc.pack(), b"")
        self.assertEqual(skc.unpack(b""), [])
        raw = b"\xff\xfe"    # a Lua byte string that is not UTF-8
        s = skc.unpack(b"\xa2" + raw)[0]
        self.assertEqual(skc.pack(s), b"\xa2" + raw)
        with self.assertRaises(skc.ProtocolError):
            skc.unpack(b"\x92\x01")        # array of 2, one element
        with self.assertRaises(skc.ProtocolError):
            skc.unpack(b"\xc1")            # never used byte
        with self.assertRaises(TypeError):
            skc.pack({1, 2})
        self.assertEqual(skc.unpack(skc.pack({1: "a", (1, 2): 3})),
                         [{1: "a", (1, 2): 3}])


if __name__ == "__main__":
    skctest.main()
