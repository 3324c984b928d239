"""Charsets of `kumo.encode.charset_encode` / `charset_decode`, as kumod names and runs them.

kumod looks a charset up by the WHATWG labels that its charset-normalizer-rs
fork lists (case-insensitive; `latin1`, `iso-8859-1` and `us-ascii`'s cousin
`windows-1252` are one charset, as the Encoding Standard says; `ascii` stands
alone) and converts with encoding_rs. Here the same labels map to Python's
codecs, with encoding_rs's behaviour kept where the two differ: a byte order
mark at the start of the input switches decoding to UTF-8 or UTF-16, the
unassigned 0x80-0x9F bytes of the windows-125x code pages decode to the C1
controls, `gbk` decodes as gb18030, `big5` is Big5-HKSCS, `shift_jis` is
Windows-31J, `euc-kr` is Windows-949, and characters that a charset cannot
hold are encoded as `&#NNNN;` references (or refused when errors are not
ignored). `ascii` encodes by passing the UTF-8 bytes through, as kumod does.
"""

from __future__ import annotations

import codecs

_LABELS: dict[str, tuple[str, ...]] = {
    "ascii": ("ascii", "us-ascii"),
    "ibm866": ("866", "cp866", "csibm866", "ibm866"),
    "iso-8859-2": ("csisolatin2", "iso-ir-101", "l2", "latin2", "iso_8859-2:1987"),
    "iso-8859-3": ("csisolatin3", "iso-ir-109", "l3", "latin3", "iso_8859-3:1988"),
    "iso-8859-4": ("csisolatin4", "iso-ir-110", "l4", "latin4", "iso_8859-4:1988"),
    "iso-8859-5": ("csisolatincyrillic", "cyrillic", "iso-ir-144", "iso_8859-5:1988"),
    "iso-8859-6": (
        "arabic", "asmo-708", "csiso88596e", "csiso88596i", "csisolatinarabic", "ecma-114",
        "iso-8859-6-e", "iso-8859-6-i", "iso-ir-127", "iso_8859-6:1987",
    ),
    "iso-8859-7": (
        "csisolatingreek", "ecma-118", "elot_928", "greek", "greek8", "iso-ir-126",
        "iso_8859-7:1987", "sun_eu_greek",
    ),
    "iso-8859-8": (
        "csiso88598e", "csisolatinhebrew", "hebrew", "iso-8859-8-e", "iso-ir-138",
        "iso_8859-8:1988", "visual",
    ),
    "iso-8859-10": ("csisolatin6", "iso-ir-157", "l6", "latin6"),
    "iso-8859-13": (),
    "iso-8859-14": (),
    "iso-8859-15": ("csisolatin9", "l9"),
    "iso-8859-16": (),
    "koi8-r": ("cskoi8r", "koi", "koi8", "koi8_r"),
    "koi8-u": ("koi8-ru",),
    "macintosh": ("csmacintosh", "mac", "x-mac-roman"),
    "windows-874": ("dos-874", "iso-8859-11", "iso8859-11", "iso885911", "tis-620"),
    "windows-1252": (
        "ansi_x3.4-1968", "cp819", "csisolatin1", "ibm819", "iso-8859-1", "iso-ir-100",
        "iso8859-1", "iso88591", "iso_8859-1", "iso_8859-1:1987", "l1", "latin1",
    ),
    "windows-1254": (
        "csisolatin5", "iso-8859-9", "iso-ir-148", "iso8859-9", "iso88599", "iso_8859-9",
        "iso_8859-9:1989", "l5", "latin5",
    ),
    "x-mac-cyrillic": ("x-mac-ukrainian",),
    "gbk": ("chinese", "csgb2312", "csiso58gb231280", "gb2312", "gb_2312", "gb_2312-80",
            "iso-ir-58", "x-gbk"),
    "gb18030": (),
    "big5": ("big5-hkscs", "cn-big5", "csbig5", "x-x-big5"),
    "euc-jp": ("cseucpkdfmtjapanese", "x-euc-jp"),
    "iso-2022-jp": ("csiso2022jp",),
    "shift_jis": ("csshiftjis", "ms932", "ms_kanji", "shift-jis", "sjis", "windows-31j", "x-sjis"),
    "euc-kr": ("cseuckr", "csksc56011987", "iso-ir-149", "korean", "ks_c_5601-1987",
               "ks_c_5601-1989", "ksc5601", "ksc_5601", "windows-949"),
    "utf-16be": ("unicodefffe",),
    "utf-16le": ("csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16"),
    "utf-8": ("unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf8", "x-unicode20utf8"),
}  # fmt: skip
for _n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15):
    _LABELS[f"iso-8859-{_n}"] += (f"iso8859-{_n}", f"iso8859{_n}", f"iso_8859-{_n}")
for _n in range(1250, 1259):
    _LABELS.setdefault(f"windows-{_n}", ())
    _LABELS[f"windows-{_n}"] += (f"cp{_n}", f"x-cp{_n}")

_CODECS = {
    "ibm866": "cp866",
    "koi8-r": "koi8_r",
    "koi8-u": "koi8_u",
    "macintosh": "mac_roman",
    "windows-874": "cp874",
    "x-mac-cyrillic": "mac_cyrillic",
    "gbk": "gbk",
    "gb18030": "gb18030",
    "big5": "big5hkscs",
    "euc-jp": "euc_jp",
    "iso-2022-jp": "iso2022_jp",
    "shift_jis": "cp932",
    "euc-kr": "cp949",
    "utf-16be": "utf-16-be",
    "utf-16le": "utf-16-le",
    "utf-8": "utf-8",
}
_RS_NAMES = {"ibm866": "IBM866", "gbk": "GBK", "big5": "Big5", "shift_jis": "Shift_JIS"}
_RS_NAMES |= {"koi8-r": "KOI8-R", "koi8-u": "KOI8-U", "euc-jp": "EUC-JP", "euc-kr": "EUC-KR"}
_RS_NAMES |= {"iso-2022-jp": "ISO-2022-JP", "utf-8": "UTF-8"}
_BY_LABEL = {label: name for name, labels in _LABELS.items() for label in (name, *labels)}


class CharsetError(ValueError):
    """An unknown charset, or input that does not convert."""


def lookup(label: str) -> str:
    """The charset's canonical name for a label (exact, or lowercased)."""
    name = _BY_LABEL.get(label) or _BY_LABEL.get(label.lower())
    if name is None:
        raise CharsetError(f"unknown charset {label}")
    return name


def _codec(name: str) -> str:
    if name.startswith("iso-8859-"):
        return "iso8859_" + name.removeprefix("iso-8859-")
    if name.startswith("windows-"):
        return "cp" + name.removeprefix("windows-")
    return _CODECS[name]


def _c1_decode(err: UnicodeError) -> tuple[str, int]:
    """encoding_rs maps the unassigned 0x80-0x9F bytes of windows-125x to the C1 controls."""
    assert isinstance(err, UnicodeDecodeError)
    byte = err.object[err.start]
    if 0x80 <= byte <= 0x9F:
        return chr(byte), err.start + 1
    raise err


codecs.register_error("kumo-c1-decode", _c1_decode)


def decode(label: str, data: bytes) -> str:
    """`charset_decode(label, data)`: the text, or CharsetError."""
    name = lookup(label)
    if name == "ascii":
        for index, byte in enumerate(data):
            if byte >= 0x80:
                raise CharsetError(f"8-bit input detected as index {index}")
        return data.decode("ascii")
    codec = _codec(name)
    if name == "gbk":
        codec = "gb18030"  # the Encoding Standard's gbk decoder is gb18030's
    for bom, switch in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if data.startswith(bom):
            codec, data = switch, data[len(bom) :]
            break
    errors = "kumo-c1-decode" if name.startswith("windows-") and name != "windows-874" else "strict"
    try:
        return data.decode(codec, errors)
    except UnicodeDecodeError as err:
        kind = "invalid" if err.end <= 1 else "incomplete"
        raise CharsetError(f"{kind} sequence at {err.end}") from None


def encode(label: str, text: str, ignore_errors: bool) -> bytes:
    """`charset_encode(label, text, ignore_errors)`: the bytes, or CharsetError."""
    name = lookup(label)
    if name == "ascii":
        return text.encode("utf-8")
    codec = _codec(name)
    try:
        return text.encode(codec)
    except UnicodeEncodeError:
        pass
    out, replaced = _encode_slowly(
        text, codec, name.startswith("windows-") and name != "windows-874"
    )
    if ignore_errors or not replaced:
        return out
    used = _RS_NAMES.get(name, name if not name.startswith("iso-") else name.upper())
    shown = ", ".join(f"{byte:x}" for byte in out)
    raise CharsetError(f"encoding replaced chars. used={used}, [{shown}]")


def _encode_slowly(text: str, codec: str, c1: bool) -> tuple[bytes, bool]:
    """Encode character by character: with `c1`, the C1 controls go back to their bytes;
    a character the charset lacks becomes a `&#NNNN;` reference (and `replaced` is true)."""
    out = bytearray()
    replaced = False
    encoder = codecs.getincrementalencoder(codec)()
    for char in text:
        try:
            out += encoder.encode(char)
        except UnicodeEncodeError:
            code = ord(char)
            if c1 and 0x80 <= code <= 0x9F:
                out.append(code)
            else:
                out += encoder.encode(f"&#{code};")
                replaced = True
    out += encoder.encode("", final=True)
    return bytes(out), replaced
