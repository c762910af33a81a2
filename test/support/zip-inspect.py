"""Reads a ZIP with Python's zipfile, an implementation independent of the service's writer.

Prints JSON: every entry's name, compression method, size and SHA-256 of its extracted bytes, and whether
testzip() found every CRC intact. With --names-only, entries are listed without reading their data.
"""
import hashlib
import json
import sys
import zipfile

path = sys.argv[1]
names_only = "--names-only" in sys.argv
with zipfile.ZipFile(path) as archive:
    entries = []
    for info in archive.infolist():
        entry = {
            "name": info.filename,
            "method": "stored" if info.compress_type == zipfile.ZIP_STORED else "deflated" if info.compress_type == zipfile.ZIP_DEFLATED else str(info.compress_type),
            "size": info.file_size,
            "utf8": bool(info.flag_bits & 0x800),
        }
        if not names_only:
            digest = hashlib.sha256()
            with archive.open(info) as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
            entry["sha256"] = digest.hexdigest()
        entries.append(entry)
    bad = None if names_only else archive.testzip()
print(json.dumps({"count": len(entries), "entries": entries, "testzip": bad}))
