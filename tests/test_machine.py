"""The machine line that benchmark records and reproduction pages print beside their numbers."""

from autoencoders import ledger, machine


def test_vector_extensions_names_present_and_missing_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f\n\nflags\t: other\n")
    assert machine._vector_extensions(str(cpuinfo)) == (
        "avx2 fma avx512f; not avx512_bf16 avx512_fp16 amx_tile"
    )
    assert machine._vector_extensions(str(tmp_path / "absent")) == "unknown"


def test_pages_name_the_cpu_its_instructions_and_the_versions():
    line = ledger.machine()
    assert line.startswith("CPU: ") and "vector instructions (/proc/cpuinfo): " in line
    assert "; jax " in line and "Load average" not in line
