"""Scanner framing and decoding: captured-style frames per AIM id and kind, and generated streams."""

import itertools
import json
import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.barcode.config import RcnLayout
from drivers.barcode.gs1 import gtin_check_digit
from drivers.barcode.protocol import Framer, decode
from edge.events import Scan
from simulators.barcode.codes import random_scan

CN13 = RcnLayout(name="cn-13-price", pattern="2IIIIIIPPPPPC")
CN18 = RcnLayout(name="cn-18-scale", pattern="26IIIIIPPPPPWWWWWC")
WEIGHT_2DP = RcnLayout(name="weight-2dp", pattern="29IIIIIWWWWWC", weight_decimals=2)
LAYOUTS = (CN13, CN18)
GS = "\x1d"
CSET82 = string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_"


def scan(frame: bytes, layouts: tuple[RcnLayout, ...] = LAYOUTS) -> Scan:
    return decode(frame, device="lane-1", ts=1_700_000_000.0, rcn_layouts=layouts)


def truth(result: Scan) -> tuple[object, ...]:
    return (result.valid, result.kind, result.gtin, result.price_minor, result.weight_g)


# --- GTIN check digits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "check"),
    [
        ("9501234", 6),  # GTIN-8
        ("03600029145", 2),  # GTIN-12 (UPC-A)
        ("950110153100", 0),  # GTIN-13
        ("1001234567890", 2),  # GTIN-14 (ITF-14 case)
        ("400638133393", 1),  # GTIN-13, GS1 Germany
    ],
)
def test_gtin_check_digit__matches_gs1_examples(payload: str, check: int) -> None:
    assert gtin_check_digit(payload) == check


# --- decode: valid captured-style frames ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "symbology", "kind", "gtin"),
    [
        (b"]E05901234123457", "]E0", "gtin", "05901234123457"),  # EAN-13, GS1 Poland
        (b"]E06901234567892", "]E0", "gtin", "06901234567892"),  # EAN-13, GS1 China
        (b"]E00036000291452", "]E0", "gtin", "00036000291452"),  # UPC-A sent as 13 digits
        (b"036000291452", None, "gtin", "00036000291452"),  # UPC-A, no AIM prefix
        (b"]E495012346", "]E4", "gtin", "00000095012346"),  # EAN-8
        (b"]I110012345678902", "]I1", "gtin", "10012345678902"),  # ITF-14
        (b"]C0LOC-A12-03", "]C0", "other", None),  # Code 128 shelf label
        (b"]C0123456789012", "]C0", "other", None),  # Code 128 digits: internal number, no check digit
        (b"]A0ABC-123", "]A0", "other", None),  # Code 39
        (b"]d1HELLO WORLD", "]d1", "other", None),  # plain DataMatrix
        (b"]Q1https://m.example.cn/p/12345678", "]Q1", "other", None),  # plain QR
        (b"HELLO", None, "other", None),
    ],
)
def test_decode__captured_frames(frame: bytes, symbology: str | None, kind: str, gtin: str | None) -> None:
    result = scan(frame)
    assert (result.symbology, result.kind, result.gtin, result.valid, result.error) == (
        symbology, kind, gtin, True, None,
    )
    assert result.text == frame.decode()[3 if symbology else 0 :]
    assert (result.device, result.ts) == ("lane-1", 1_700_000_000.0)


def test_decode__gs1_datamatrix_gives_ais_in_scan_order() -> None:
    result = scan(b"]d201095011010209171719050810ABCD1234\x1d2112345")
    assert (result.symbology, result.kind, result.valid) == ("]d2", "gs1", True)
    assert result.gtin == "09501101020917"
    assert result.ai_json == '{"01":"09501101020917","17":"190508","10":"ABCD1234","21":"12345"}'
    assert result.text == "01095011010209171719050810ABCD1234\x1d2112345"  # FNC1 kept as GS


def test_decode__gs1_128_net_weight_and_price_payable() -> None:
    result = scan(b"]C10106901234567892310300125039221999")
    assert (result.kind, result.valid, result.gtin) == ("gs1", True, "06901234567892")
    assert (result.weight_g, result.price_minor) == (1250, 1999)  # 1.250 kg; 19.99 with 2 decimals


@pytest.mark.parametrize(
    ("ai", "value", "weight_g"),
    [("3100", "000002", 2000), ("3102", "000125", 1250), ("3105", "012345", 123)],  # 0.12345 kg rounds
)
def test_decode__gs1_weight_decimals_from_ai_last_digit(ai: str, value: str, weight_g: int) -> None:
    assert scan(f"]C10106901234567892{ai}{value}".encode()).weight_g == weight_g


def test_decode__gs1_price_with_three_decimals_rounds_to_minor_units() -> None:
    assert scan(b"]C1010690123456789239231235").price_minor == 124  # 1.235 → 1.24 (half up)


@pytest.mark.parametrize(
    "frame",
    [
        b"]Q30106901234567892\x1d10LOT7",  # GS1 QR
        b"]e00106901234567892",  # GS1 DataBar
        b"]C10106901234567892",  # GS1-128
        b"0106901234567892\x1d10LOT7",  # no AIM, but FNC1 separators mark it GS1
    ],
)
def test_decode__gs1_symbologies_and_gs_separated_payloads_are_gs1(frame: bytes) -> None:
    result = scan(frame)
    assert (result.kind, result.valid, result.gtin) == ("gs1", True, "06901234567892")
    assert json.loads(str(result.ai_json))["01"] == "06901234567892"


def test_decode__china_13_digit_price_code() -> None:
    result = scan(b"]E02123456012507")
    assert truth(result) == (True, "rcn_price", "02123456000009", 1250, None)


def test_decode__china_18_digit_scale_code_has_price_weight_and_no_lookup_gtin() -> None:
    result = scan(b"]C0261234501999007501")
    assert truth(result) == (True, "rcn_price", None, 1999, 750)


def test_decode__weight_only_layout_scales_kg_decimals_to_grams() -> None:
    result = scan(b"]E02900123012349", (WEIGHT_2DP, *LAYOUTS))
    assert truth(result) == (True, "rcn_weight", "02900123000001", None, 12340)


def test_decode__first_matching_layout_wins() -> None:
    assert scan(b"]E02900123012349", (*LAYOUTS, WEIGHT_2DP)).kind == "rcn_price"


def test_decode__rcn_prefix_code_without_layouts_is_a_plain_gtin() -> None:
    assert truth(scan(b"]E02123456012507", ())) == (True, "gtin", "02123456012507", None, None)


# --- decode: invalid frames ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (b"]E05901234123458", "gtin"),
        (b"]E495012347", "gtin"),
        (b"036000291453", "gtin"),
        (b"]I110012345678903", "gtin"),
        (b"]E02123456012508", "rcn_price"),
        (b"]C0261234501999007502", "rcn_price"),
    ],
)
def test_decode__bad_check_digit_is_invalid_without_gtin(frame: bytes, kind: str) -> None:
    result = scan(frame)
    assert (result.valid, result.kind, result.gtin, result.price_minor) == (False, kind, None, None)
    assert str(result.error).startswith("bad check digit: expected ")


def test_decode__gs1_with_bad_gtin_check_digit_is_invalid() -> None:
    result = scan(b"]C10106901234567893\x1d10LOT7")
    assert (result.valid, result.kind, result.gtin) == (False, "gs1", None)
    assert result.error == "bad check digit in AI (01): expected 2, got 3"


@pytest.mark.parametrize(
    ("frame", "error_part"),
    [
        (b"]C1ABC", "Application Identifier"),
        (b"]C1010690123456789217250231", "date"),  # 31 February 2025
        (b"]d20106901234567892\x1d0106901234567885", "repeated"),
        (b"]C1", "empty payload"),
    ],
)
def test_decode__bad_gs1_data_is_invalid_with_reason(frame: bytes, error_part: str) -> None:
    result = scan(frame)
    assert result.valid is False
    assert error_part in str(result.error)


def test_decode__non_printable_bytes_are_invalid_and_escaped() -> None:
    result = scan(b"]E0\x00590\xff\t")
    assert (result.valid, result.kind, result.error) == (False, "other", "non-printable bytes")
    assert (result.symbology, result.text) == ("]E0", "\\x00590\\xff\\x09")


# --- Framer ------------------------------------------------------------------------------------------


def test_framer__splits_on_terminator_and_removes_it() -> None:
    framer = Framer(b"\r", max_frame=64, idle_timeout_s=2.0)
    assert framer.feed(b"]E05901234123457\r]C0LOC-A1\r", now=0.0) == [b"]E05901234123457", b"]C0LOC-A1"]
    assert framer.counters.frames == 2


def test_framer__never_emits_without_terminator() -> None:
    framer = Framer(b"\r", max_frame=64, idle_timeout_s=2.0)
    assert framer.feed(b"]E0590123412", now=0.0) == []
    assert framer.feed(b"3457", now=0.5) == []
    assert framer.feed(b"\r", now=0.6) == [b"]E05901234123457"]


def test_framer__crlf_split_across_reads() -> None:
    framer = Framer(b"\r\n", max_frame=64, idle_timeout_s=2.0)
    assert framer.feed(b"]E05901234123457\r", now=0.0) == []
    assert framer.feed(b"\n]E4950", now=0.01) == [b"]E05901234123457"]
    assert framer.feed(b"12346\r", now=0.02) == []
    assert framer.feed(b"\n", now=0.03) == [b"]E495012346"]


def test_framer__crlf_scanner_on_cr_port_gives_clean_frames() -> None:
    framer = Framer(b"\r", max_frame=64, idle_timeout_s=2.0)
    frames = framer.feed(b"]E05901234123457\r\n]E495012346\r\n", now=0.0)
    assert frames == [b"]E05901234123457", b"]E495012346"]
    assert framer.feed(b"", now=10.0) == []
    assert framer.counters.partial_discarded == 0  # the stray LF is not a frame


def test_framer__custom_terminator_byte() -> None:
    framer = Framer(b"\x03", max_frame=64, idle_timeout_s=2.0)
    assert framer.feed(b"]Q1line1\rline2\x03", now=0.0) == [b"]Q1line1\rline2"]


def test_framer__overlong_frame_dropped_to_next_terminator_and_counted() -> None:
    framer = Framer(b"\r", max_frame=16, idle_timeout_s=2.0)
    assert framer.feed(b"A" * 17 + b"\r" + b"]E495012346\r", now=0.0) == [b"]E495012346"]
    assert (framer.counters.overlong, framer.counters.frames) == (1, 1)


def test_framer__overlong_stream_without_terminator_is_dropped_while_buffering() -> None:
    framer = Framer(b"\r\n", max_frame=16, idle_timeout_s=2.0)
    for index in range(100):
        assert framer.feed(b"B" * 50, now=index * 0.01) == []
    assert framer.feed(b"tail\r", now=1.0) == []
    assert framer.feed(b"\n]E495012346\r\n", now=1.01) == [b"]E495012346"]
    assert (framer.counters.overlong, framer.counters.frames) == (1, 1)


def test_framer__frame_of_exactly_max_bytes_is_kept() -> None:
    framer = Framer(b"\r\n", max_frame=16, idle_timeout_s=2.0)
    assert framer.feed(b"C" * 16 + b"\r", now=0.0) == []
    assert framer.feed(b"\n", now=0.0) == [b"C" * 16]
    assert framer.counters.overlong == 0


def test_framer__idle_partial_is_discarded_and_counted() -> None:
    framer = Framer(b"\r", max_frame=64, idle_timeout_s=2.0)
    assert framer.feed(b"]E05901", now=0.0) == []
    assert framer.feed(b"", now=2.5) == []  # the driver feeds nothing on a read timeout
    assert framer.counters.partial_discarded == 1
    assert framer.feed(b"\r]E495012346\r", now=2.6) == [b"]E495012346"]
    assert framer.counters.frames == 1


def test_framer__idle_partial_never_reaches_the_decoder_as_a_glued_frame() -> None:
    framer = Framer(b"\r", max_frame=64, idle_timeout_s=2.0)
    framer.feed(b"]E05901", now=0.0)
    frames = framer.feed(b"]E495012346\r", now=3.0)
    assert frames == [b"]E495012346"]


def test_framer__partial_within_idle_timeout_is_kept() -> None:
    framer = Framer(b"\r", max_frame=64, idle_timeout_s=2.0)
    framer.feed(b"]E05901", now=0.0)
    assert framer.feed(b"234123457\r", now=1.9) == [b"]E05901234123457"]
    assert framer.counters.partial_discarded == 0


def test_framer__reset_discards_partial_and_counts_it() -> None:
    framer = Framer(b"\r", max_frame=64, idle_timeout_s=2.0)
    framer.feed(b"]E05901", now=0.0)
    framer.reset()
    assert framer.counters.partial_discarded == 1
    assert framer.feed(b"234123457\r", now=0.1) == [b"234123457"]
    framer.reset()
    assert framer.counters.partial_discarded == 1  # nothing pending, nothing counted


def test_framer__blank_frames_are_garbage_and_empty_frames_are_ignored() -> None:
    framer = Framer(b"\r", max_frame=64, idle_timeout_s=2.0)
    assert framer.feed(b"\r\r  \r\x00\r]E495012346\r", now=0.0) == [b"]E495012346"]
    assert (framer.counters.garbage_frames, framer.counters.frames) == (2, 1)


# --- generated: framer against a reference split -------------------------------------------------------

TERMINATOR_CHOICES = [b"\r", b"\n", b"\r\n", b"\x03"]
NOISE_TOKENS = st.sampled_from([*TERMINATOR_CHOICES, b"]E0", b"\x1d", b" ", b"A"])


@st.composite
def terminated_streams(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A terminator and a stream of pieces mostly separated by it, with stray CR/LF/GS and a ragged tail."""
    terminator = draw(st.sampled_from(TERMINATOR_CHOICES))
    pieces = draw(st.lists(st.binary(max_size=16) | NOISE_TOKENS, min_size=1, max_size=12))
    count = len(pieces)
    separators = draw(st.lists(st.just(terminator) | NOISE_TOKENS, min_size=count, max_size=count))
    stream = b"".join(piece + separator for piece, separator in zip(pieces, separators, strict=True))
    return terminator, stream + draw(st.binary(max_size=8))


def reference_frames(stream: bytes, terminator: bytes, max_frame: int) -> list[bytes]:
    """What a framer with unlimited memory and no idle timeout would emit."""
    pieces = stream.split(terminator)[:-1]  # the last piece was not followed by a terminator
    kept = [piece.strip(b"\r\n") for piece in pieces if len(piece) <= max_frame]
    return [frame for frame in kept if any(0x21 <= b <= 0x7E for b in frame)]


def chunked(stream: bytes, sizes: list[int]) -> list[bytes]:
    """The stream cut into reads of the given sizes, repeated; small reads hit every split point."""
    chunks: list[bytes] = []
    start = 0
    for size in itertools.cycle(sizes):
        if start >= len(stream):
            return chunks
        chunks.append(stream[start : start + size])
        start += size
    return chunks


@settings(max_examples=400)
@given(
    case=terminated_streams(),
    sizes=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8),
    max_frame=st.integers(min_value=1, max_value=12),
)
def test_framer__random_chunks_match_reference_split(
    case: tuple[bytes, bytes], sizes: list[int], max_frame: int
) -> None:
    terminator, stream = case
    expected = reference_frames(stream, terminator, max_frame)
    # Byte-at-a-time reads hit every split point; whole-stream and random reads cover the rest.
    for reads in ([1], [len(stream) or 1], sizes):
        framer = Framer(terminator, max_frame=max_frame, idle_timeout_s=2.0)
        emitted = [frame for chunk in chunked(stream, reads) for frame in framer.feed(chunk, now=0.0)]
        assert emitted == expected, reads


@settings(max_examples=400)
@given(
    case=terminated_streams(),
    sizes=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8),
    gaps=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=10),
)
def test_framer__with_idle_gaps_only_emits_terminated_bytes(
    case: tuple[bytes, bytes], sizes: list[int], gaps: list[float]
) -> None:
    terminator, stream = case
    framer = Framer(terminator, max_frame=32, idle_timeout_s=2.0)
    pieces = [piece.rstrip(b"\r\n") for piece in stream.split(terminator)[:-1]]
    now = 0.0
    for chunk, gap in zip(chunked(stream, sizes), itertools.cycle(gaps)):
        now += gap
        for frame in framer.feed(chunk, now=now):
            assert any(piece.endswith(frame) for piece in pieces)


# --- generated: decode never raises ------------------------------------------------------------------

AIMS = st.sampled_from(["", "]E0", "]E4", "]I1", "]C0", "]C1", "]d2", "]Q3", "]e0", "]A0", "]Q1", "]"])
PRINTABLE_PAYLOADS = st.text(alphabet=string.digits * 4 + CSET82 + GS, max_size=60)


@settings(max_examples=500)
@given(st.binary(max_size=80))
def test_decode__random_bytes_never_raise(frame: bytes) -> None:
    result = scan(frame)
    assert isinstance(result, Scan)
    assert not str(result.error).startswith("internal decoder error")


@settings(max_examples=500)
@given(aim=AIMS, payload=PRINTABLE_PAYLOADS)
def test_decode__random_printable_payloads_never_raise(aim: str, payload: str) -> None:
    result = scan((aim + payload).encode("ascii"), (CN13, CN18, WEIGHT_2DP))
    assert not str(result.error).startswith("internal decoder error")
    assert result.valid == (result.error is None)


# --- generated: GS1 round trip -------------------------------------------------------------------------


@st.composite
def gtin14s(draw: st.DrawFn) -> str:
    body = draw(st.text(alphabet=string.digits, min_size=13, max_size=13))
    return body + str(gtin_check_digit(body))


@st.composite
def yymmdd(draw: st.DrawFn) -> str:
    return f"{draw(st.integers(0, 99)):02d}{draw(st.integers(1, 12)):02d}{draw(st.integers(0, 28)):02d}"


OPTIONAL_AIS = {
    "10": (st.text(alphabet=CSET82, min_size=1, max_size=20), True),
    "21": (st.text(alphabet=CSET82, min_size=1, max_size=20), True),
    "37": (st.text(alphabet=string.digits, min_size=1, max_size=8), True),
    "17": (yymmdd(), False),
    "3103": (st.text(alphabet=string.digits, min_size=6, max_size=6), False),
    "3922": (st.text(alphabet=string.digits, min_size=1, max_size=15), True),
}


@st.composite
def gs1_messages(draw: st.DrawFn) -> list[tuple[str, str, bool]]:
    ais = draw(st.permutations(list(OPTIONAL_AIS)))[: draw(st.integers(0, len(OPTIONAL_AIS)))]
    fields = [("01", draw(gtin14s()), False)]
    fields += [(ai, draw(OPTIONAL_AIS[ai][0]), OPTIONAL_AIS[ai][1]) for ai in ais]
    return draw(st.permutations(fields))


@settings(max_examples=300)
@given(fields=gs1_messages(), aim=st.sampled_from(["]C1", "]d2", "]Q3", "]e0"]))
def test_decode__gs1_round_trip(fields: list[tuple[str, str, bool]], aim: str) -> None:
    payload = "".join(
        ai + value + (GS if variable and index < len(fields) - 1 else "")
        for index, (ai, value, variable) in enumerate(fields)
    )
    result = scan((aim + payload).encode("ascii"))
    values = {ai: value for ai, value, _ in fields}
    assert (result.valid, result.error, result.kind) == (True, None, "gs1")
    assert json.loads(str(result.ai_json)) == values
    assert list(json.loads(str(result.ai_json))) == [ai for ai, _, _ in fields]
    assert result.gtin == values["01"]
    assert result.weight_g == (int(values["3103"]) if "3103" in values else None)
    assert result.price_minor == (int(values["3922"]) if "3922" in values else None)


# --- simulator ground truth ----------------------------------------------------------------------------


@pytest.mark.parametrize("layouts", [(WEIGHT_2DP, CN13, CN18), ()], ids=["with-layouts", "no-layouts"])
def test_random_scan__every_sample_decodes_to_its_ground_truth(layouts: tuple[RcnLayout, ...]) -> None:
    rng = random.Random(20240601)
    kinds: set[tuple[str, bool]] = set()
    for _ in range(2000):
        sim = random_scan(rng, bad_share=0.1, rcn_layouts=layouts)
        result = scan(sim.frame(b"\r\n")[:-2], layouts)
        assert truth(result) == (sim.valid, sim.kind, sim.gtin, sim.price_minor, sim.weight_g), sim
        assert result.symbology == (sim.aim or None)
        kinds.add((sim.kind, sim.valid))
    expected_kinds = {"gtin", "gs1", "other"} | ({"rcn_price", "rcn_weight"} if layouts else set())
    assert {kind for kind, _ in kinds} == expected_kinds
    assert ("gtin", False) in kinds
    assert ("gs1", False) in kinds


def test_random_scan__bad_share_sets_the_invalid_fraction() -> None:
    rng = random.Random(7)
    assert all(random_scan(rng, bad_share=0.0, rcn_layouts=LAYOUTS).valid for _ in range(300))
    assert not any(random_scan(rng, bad_share=1.0, rcn_layouts=LAYOUTS).valid for _ in range(300))


def test_random_scan__frames_survive_the_framer() -> None:
    rng = random.Random(3)
    sims = [random_scan(rng, bad_share=0.1, rcn_layouts=LAYOUTS) for _ in range(200)]
    stream = b"".join(sim.frame(b"\r") for sim in sims)
    framer = Framer(b"\r", max_frame=512, idle_timeout_s=2.0)
    frames = [frame for chunk in chunked(stream, [7]) for frame in framer.feed(chunk, now=0.0)]
    assert frames == [sim.frame(b"") for sim in sims]
