"""Engine-cache decisions: what is trusted, what is rebuilt, and why (no TensorRT needed)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engines.runtime.engine_cache import (MAGIC, BuildFlags, CorruptEngine, EngineCache,
                                          EngineKey, decode_engine_file, encode_engine_file)

ENGINE = bytes(range(256)) * 40
FLAGS = BuildFlags(fp16=True, strongly_typed=False, min_batch=1, opt_batch=1, max_batch=8,
                   workspace_mib=1024)


def make_key(**changes) -> EngineKey:
    key = EngineKey(model_name="scorer", onnx_sha256="a" * 64, trt_version="10.8.0",
                    gpu_name="NVIDIA RTX A2000", compute_capability="8.6", flags=FLAGS)
    return dataclasses.replace(key, **changes)


@pytest.fixture
def cache(tmp_path):
    return EngineCache(tmp_path / "engines")


def test_key_changes_with_everything_the_engine_depends_on():
    base = make_key()
    variants = [make_key(onnx_sha256="b" * 64), make_key(trt_version="10.9.0"),
                make_key(gpu_name="NVIDIA L4"), make_key(compute_capability="8.9"),
                make_key(flags=dataclasses.replace(FLAGS, fp16=False)),
                make_key(flags=dataclasses.replace(FLAGS, max_batch=16)),
                make_key(flags=dataclasses.replace(FLAGS, strongly_typed=True))]
    names = {base.file_name()} | {v.file_name() for v in variants}
    assert len(names) == 1 + len(variants)
    assert make_key(model_name="scorer").digest() == base.digest()
    assert base.file_name().startswith("scorer-") and base.file_name().endswith(".engine")


def test_store_then_lookup_is_a_hit(cache):
    key = make_key()
    path = cache.store(key, ENGINE)
    found = cache.lookup(key)
    assert found.hit and found.engine == ENGINE and found.path == path
    assert found.header["onnx_sha256"] == key.onnx_sha256
    assert found.header["gpu_name"] == "NVIDIA RTX A2000"
    assert [p.name for p in cache.directory.iterdir()] == [path.name]  # no temp files left


def test_empty_cache_is_a_miss(cache):
    found = cache.lookup(make_key())
    assert not found.hit and found.reason.startswith("missing")


def test_miss_after_onnx_change_says_stale(cache):
    cache.store(make_key(), ENGINE)
    found = cache.lookup(make_key(onnx_sha256="b" * 64))
    assert not found.hit and found.reason.startswith("stale: ONNX changed")


@pytest.mark.parametrize("changed, reason", [
    ({"trt_version": "10.9.0"}, "mismatch: built with TensorRT 10.8.0, this is 10.9.0"),
    ({"gpu_name": "NVIDIA L4"}, "mismatch: built for GPU NVIDIA RTX A2000"),
])
def test_miss_after_upgrade_or_new_gpu_says_mismatch(cache, changed, reason):
    cache.store(make_key(), ENGINE)
    found = cache.lookup(make_key(**changed))
    assert not found.hit and found.reason.startswith(reason)


def test_engine_file_under_another_keys_name_is_not_trusted(cache):
    """A file copied or renamed onto the path of another key: the header tells."""
    old, new = make_key(), make_key(gpu_name="NVIDIA L4")
    cache.store(old, ENGINE)
    cache.path_for(old).rename(cache.path_for(new))
    found = cache.lookup(new)
    assert not found.hit and "mismatch: built for GPU NVIDIA RTX A2000" in found.reason


def corrupt_bit_flip_in_engine(data: bytes) -> bytes:
    position = len(data) - 100
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1:]


def corrupt_bit_flip_in_header(data: bytes) -> bytes:
    position = data.index(b"NVIDIA RTX A2000")
    return data[:position] + b"NVIDIA RTX A2001" + data[position + 16:]


@pytest.mark.parametrize("damage, reason", [
    (corrupt_bit_flip_in_engine, "engine checksum mismatch"),
    (corrupt_bit_flip_in_header, "header checksum mismatch"),
    (lambda d: d[:-1], "truncated"),
    (lambda d: d[:len(d) // 2], "truncated"),
    (lambda d: d[:5], "truncated"),
    (lambda d: b"" , "truncated"),
    (lambda d: b"PLANFILE" + d[8:], "bad magic"),
    (lambda d: d + b"extra", "truncated: engine has"),
])
def test_corrupt_engine_files_are_rebuilt_not_trusted(cache, damage, reason):
    key = make_key()
    path = cache.store(key, ENGINE)
    path.write_bytes(damage(path.read_bytes()))
    found = cache.lookup(key)
    assert not found.hit and found.engine is None
    assert found.reason.startswith("corrupt") and reason in found.reason


def test_header_json_damage_with_valid_prefix_is_corrupt():
    data = MAGIC + (5).to_bytes(4, "little") + b"{nope" + ENGINE
    with pytest.raises(CorruptEngine, match="not valid JSON"):
        decode_engine_file(data)


def test_header_repeats_the_key_and_the_engine_hash():
    header, engine = decode_engine_file(encode_engine_file(make_key(), ENGINE, created="t0"))
    assert engine == ENGINE
    assert header["flags"] == dataclasses.asdict(FLAGS)
    assert header["trt_version"] == "10.8.0" and header["created"] == "t0"
    assert header["engine_size"] == len(ENGINE) and len(header["engine_sha256"]) == 64
    json.dumps(header)  # plain JSON all the way down


def test_discard_removes_the_engine(cache):
    key = make_key()
    cache.store(key, ENGINE)
    cache.discard(key)
    assert not cache.path_for(key).exists()
    cache.discard(key)  # discarding nothing is fine


def test_timing_cache_round_trip_per_version_and_gpu(cache):
    assert cache.load_timing_cache("10.8.0", "NVIDIA L4") == b""
    cache.save_timing_cache("10.8.0", "NVIDIA L4", b"timings")
    assert cache.load_timing_cache("10.8.0", "NVIDIA L4") == b"timings"
    assert cache.load_timing_cache("10.9.0", "NVIDIA L4") == b""
    assert cache.timing_cache_path("10.8.0", "NVIDIA L4").parent == cache.directory
