"""Calls, through ctypes, entry points the drop-in libraries do not simulate; prints what
each returned and the errno it left, as JSON.  Run with ``impl.dropin.subprocess_env()``."""

import ctypes
import json

verbs = ctypes.CDLL("libibverbs.so.1", use_errno=True)
cm = ctypes.CDLL("librdmacm.so.1", use_errno=True)
out = {}
for lib, name, restype in ((verbs, "ibv_import_device", ctypes.c_void_p),
                           (verbs, "ibv_attach_mcast", ctypes.c_int),
                           (verbs, "ibv_create_ah", ctypes.c_void_p),
                           (cm, "rdma_join_multicast", ctypes.c_int),
                           (cm, "rsocket", ctypes.c_int)):
    fn = getattr(lib, name)
    fn.restype = restype
    ctypes.set_errno(0)
    rv = fn(0, 0, 0)
    out[name] = {"return": rv, "errno": ctypes.get_errno()}
out["sv_fabric_current"] = hasattr(verbs, "sv_fabric_current")
print(json.dumps(out))
