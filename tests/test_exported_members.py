import chaoslab


def test_public_api_is_pinned() -> None:
    assert sorted(chaoslab.__all__) == [
        "ChaoslabError", "InjectionError", "InstallError", "LabError", "RevertError", "SpecError",
        "TargetError", "__version__", "discover",
    ]
    for name in chaoslab.__all__:
        assert hasattr(chaoslab, name)


def test_test_modules_have_unique_names() -> None:
    # Test directories are not packages: pytest imports each module by its file name, so two files with
    # the same name in different directories stop the whole session at collection.
    from collections import Counter
    from pathlib import Path

    names = Counter(p.name for p in Path(__file__).parent.rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
