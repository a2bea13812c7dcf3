import chaoslab


def test_public_api_is_pinned() -> None:
    assert sorted(chaoslab.__all__) == [
        "ChaoslabError", "InjectionError", "InstallError", "LabError", "RevertError", "SpecError",
        "TargetError", "__version__", "discover",
    ]
    for name in chaoslab.__all__:
        assert hasattr(chaoslab, name)
