"""Scheduled runs on an existing engine, never a home-made daemon: `chaoslab schedule render` turns an
experiment or game-day file into a Kubernetes CronJob (with its ConfigMap, ServiceAccount and least-privilege
RBAC) or into a scheduled CI job (GitHub Actions, GitLab CI). Rendering is pure (`render_*` return plain
dicts); reading the files and asking an apiserver which CronJob version it serves are the only I/O, at the
edges. Called by the CLI; see docs/scheduling.md.

    >>> job = Job.from_file(Path("experiments/gamedays/weekly.yaml"), cron="0 10 * * 2")     # doctest: +SKIP
    >>> print(to_yaml(render_cronjob(job)))                                                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from chaoslab.errors import SpecError
from chaoslab.spec.workload import ref

CRONJOB_VERSIONS = ("batch/v1", "batch/v1beta1")
"""batch/v1 CronJob from Kubernetes 1.21; batch/v1beta1 up to 1.24 (the only one 1.20 serves)."""
DEFAULT_IMAGE = "ghcr.io/chaoslab/chaoslab:0.1.0"
SPEC_DIR = "/etc/chaoslab/spec"
RESULTS_DIR = "/results"
WORKDIR = "/opt/chaoslab"
CANARY_NAMESPACE = "chaoslab-canary"
GAMEDAY_KINDS = ("GameDay",)

Format = Literal["cronjob", "github", "gitlab"]

#: The least-privilege roles chaoslab ships (`deploy/rbac/`, proven by a run with exactly those rights):
#: the CronJob's account gets the same, so a scheduled run needs nothing the tested one did not.
RBAC_DIR = Path(__file__).resolve().parents[2] / "deploy" / "rbac"
_ROLE_KINDS = ("ClusterRole", "Role")
_BINDING_KINDS = ("ClusterRoleBinding", "RoleBinding")


_CRON_FIELD = re.compile(r"^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*$")
_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_cron(cron: str) -> str:
    """The cron expression, checked for shape (5 fields, or a macro); SpecError naming the fix."""
    expr = cron.strip()
    if expr in _MACROS:
        return expr
    fields = expr.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise SpecError([(f"--cron {cron!r}: not a cron schedule; expected 5 fields (minute hour day-of-month "
                          f"month day-of-week), e.g. '0 10 * * 2' for Tuesdays 10:00, or one of {', '.join(_MACROS)}")])
    return expr


def dns_name(text: str) -> str:
    """`Weekly Game-Day.yaml` → `weekly-game-day`: a valid object name (RFC 1123 label, ≤ 52 characters:
    the CronJob controller appends an 11-character suffix to its Jobs' names)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (name[:52].rstrip("-")) or "chaoslab"


@dataclass(frozen=True)
class Job:
    """What to schedule: a file (experiment or game day), its kind, the files it refers to, and how."""

    file: PurePosixPath
    """The file's path relative to its shipping root (the directory it was found in, or the game day's)."""
    kind: str
    """`Experiment`, `ControlPlaneChaos`, `chaostoolkit` or `GameDay`."""
    files: Mapping[str, str]
    """Name in the ConfigMap (and in the pod's spec directory) → content: the file itself and, for a game
    day, the experiment files its steps name, each under a flat name the game day is rewritten to use
    (`pack_game_day`)."""
    cron: str
    name: str
    namespace: str = "chaoslab"
    image: str = DEFAULT_IMAGE
    time_zone: str | None = None
    api_version: str = "batch/v1"
    target: str | None = None
    """Passed to `chaoslab run --target` (`in-cluster`: in the pod, the ServiceAccount's config)."""
    results_pvc: str | None = None
    starting_deadline: int = 600
    history_success: int = 3
    history_failed: int = 5
    active_deadline: int = 3 * 3600
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: {
        "requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}})
    extra_args: Sequence[str] = ()

    @property
    def gameday(self) -> bool:
        return self.kind in GAMEDAY_KINDS

    def command(self, spec_dir: str, results_dir: str) -> list[str]:
        """The chaoslab command line that runs the file."""
        path = f"{spec_dir}/{self.file}"
        base = ["chaoslab", "gameday", "run", path] if self.gameday else ["chaoslab", "run", path]
        base += ["--no-live", "--runs-dir", f"{results_dir}/runs"]
        if self.target:
            base += ["--target", self.target]
        if self.target and not self.target.startswith("lab"):
            # Scheduling it is the consent `--yes` stands for; a production-looking cluster still needs
            # the allow-list ($CHAOSLAB_CONFIG) as well (chaoslab.plan.guard).
            base += ["--yes"]
        if not self.gameday:
            base += ["--junit", f"{results_dir}/junit.xml", "--summary", f"{results_dir}/summary.md"]
        return base + list(self.extra_args)

    @classmethod
    def from_file(cls, path: Path, cron: str, **options: Any) -> Job:
        """Read the file, tell its kind and collect what it refers to. The file is loaded — a game day with
        every experiment its steps name — so a broken one fails here, exit 2, not at 10:00 next Tuesday."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError([f"{path}: cannot be read ({exc.strerror or exc})"]) from exc
        kind = file_kind(text, str(path))
        files = {path.name: text}
        if kind in GAMEDAY_KINDS:
            from chaoslab.spec.gameday import load_game_day

            load_game_day(path)
            files = pack_game_day(text, path)
        else:
            from chaoslab.spec import load

            load(path)
        name = options.pop("name", None) or dns_name(f"chaoslab-{path.stem}")
        if not _NAME.match(name) or len(name) > 52:
            raise SpecError([(f"--name {name!r}: must be lowercase letters, digits and '-', start and end with "
                              f"a letter or digit, at most 52 characters (the Job suffix needs 11 more)")])
        return cls(PurePosixPath(path.name), kind, files, check_cron(cron), name, **options)


def file_kind(text: str, where: str) -> str:
    """The `kind` of the file's documents (all must agree); `chaostoolkit` for a Chaos Toolkit experiment."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise SpecError([f"{where}: not YAML ({exc})"]) from exc
    kinds = set()
    for d in docs:
        if isinstance(d, dict) and "method" in d and "kind" not in d:
            kinds.add("chaostoolkit")
        elif isinstance(d, dict) and isinstance(d.get("kind"), str):
            kinds.add(d["kind"])
        else:
            raise SpecError([f"{where}: a document without a kind; expected an Experiment or a GameDay"])
    if not kinds:
        raise SpecError([f"{where}: the file is empty; expected an Experiment or a GameDay"])
    known = {"Experiment", "ControlPlaneChaos", "chaostoolkit", *GAMEDAY_KINDS}
    if unknown := kinds - known:
        raise SpecError([(f"{where}: kind {', '.join(sorted(unknown))} cannot be scheduled; expected Experiment, "
                          f"ControlPlaneChaos or GameDay")])
    if len(kinds) > 1 and kinds & set(GAMEDAY_KINDS):
        raise SpecError([f"{where}: mixes a GameDay with experiments; put the game day in its own file"])
    return min(kinds)


CONFIGMAP_BYTES = 1024 * 1024
"""What one ConfigMap may hold (etcd's request limit bounds an object: 1 MiB of data)."""
_KEY_CHARS = re.compile(r"[^-._a-zA-Z0-9]")


def _step_files(root: yaml.Node | None) -> list[yaml.ScalarNode]:
    """The scalar nodes of `spec.steps[*].file` in a composed game day, in file order."""
    def get(node: yaml.Node | None, key: str) -> yaml.Node | None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    return v  # type: ignore[no-any-return]
        return None

    steps = get(get(root, "spec"), "steps")
    found = [get(step, "file") for step in (steps.value if isinstance(steps, yaml.SequenceNode) else [])]
    return [f for f in found if isinstance(f, yaml.ScalarNode)]


def flat_name(ref: str, taken: set[str]) -> str:
    """A ConfigMap key (and file name in the pod) for the file a step names: its base name, or, when another
    file has that, its path joined with `__` (`..` spelled `up`), then `-2`, `-3` … until it is free.

        >>> flat_name("../etcd-leader-kill.yaml", {"weekly.yaml"})
        'etcd-leader-kill.yaml'
        >>> flat_name("../old/kill.yaml", {"weekly.yaml", "kill.yaml"})
        'up__old__kill.yaml'
    """
    parts = [p for p in PurePosixPath(ref).parts if p not in ("/", ".")]

    def key(text: str) -> str:
        text = _KEY_CHARS.sub("_", text).lstrip(".") or "file"
        if len(text) <= 200:
            return text
        stem, dot, suffix = text.rpartition(".") if "." in text else (text, "", "")
        return f"{stem[:190]}{dot}{suffix[:9]}"

    name = key(parts[-1] if parts else ref)
    if name in taken:
        name = key("__".join("up" if p == ".." else p for p in parts))
    stem, dot, suffix = name.rpartition(".") if "." in name else (name, "", "")
    n = 2
    while name in taken:
        name, n = f"{stem}-{n}{dot}{suffix}", n + 1
    return name


def pack_game_day(text: str, path: Path) -> dict[str, str]:
    """What a game day ships in its ConfigMap: every experiment file its steps name, each once under a flat,
    collision-free name (`flat_name`) — wherever it lies, `../` included — and the game day itself under its
    own name, rewritten so each step's `file` names the packed copy. Only those scalars change (spliced
    into the text at their place), so comments, order and everything else stay as written.

    Load the game day first (`load_game_day`): a step whose file is missing is left as written here."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise SpecError([f"{path}: not YAML ({exc})"]) from exc
    taken, packed, files = {path.name}, {}, {}
    edits: list[tuple[int, int, str]] = []
    for node in _step_files(root):
        ref = path.parent / node.value
        if not ref.is_file():
            continue
        real = ref.resolve()
        if real not in packed:
            packed[real] = flat_name(node.value, taken)
            taken.add(packed[real])
            files[packed[real]] = ref.read_text(encoding="utf-8")
        if packed[real] != node.value:
            edits.append((node.start_mark.index, node.end_mark.index, json.dumps(packed[real])))
    for start, end, new in sorted(set(edits), reverse=True):
        text = text[:start] + new + text[end:]
    out = {path.name: text, **files}
    size = sum(len(k.encode()) + len(v.encode()) for k, v in out.items())
    if size > CONFIGMAP_BYTES:
        raise SpecError([(f"{path}: the game day and its {len(files)} experiment file(s) take {size} bytes; a "
                          f"ConfigMap holds at most {CONFIGMAP_BYTES} (1 MiB): split the game day")])
    return out


def config_key(rel: str) -> str:
    """A ConfigMap key for a relative path (keys may not hold '/')."""
    return re.sub(r"[^-._a-zA-Z0-9]", "_", rel.replace("/", "__"))


def _meta(job: Job, name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {"app.kubernetes.io/name": "chaoslab", "app.kubernetes.io/instance": job.name,
                      "app.kubernetes.io/component": "schedule"}
    return meta


def shipped_rbac(rbac_dir: Path = RBAC_DIR) -> list[dict[str, Any]]:
    """The objects of deploy/rbac/*.yaml, in file order."""
    if not rbac_dir.is_dir():
        raise SpecError([(f"{rbac_dir}: not found; render schedules from a chaoslab source tree (it holds the "
                          f"least-privilege roles in deploy/rbac/)")])
    return [doc for f in sorted(rbac_dir.glob("*.yaml")) for doc in yaml.safe_load_all(f.read_text()) if doc]


def render_rbac(job: Job, rbac_dir: Path = RBAC_DIR) -> list[dict[str, Any]]:
    """The job's ServiceAccount, and deploy/rbac's roles and bindings bound to it: every role renamed
    `<job>-<role>` so schedules never share or overwrite each other's roles, the canary Namespace kept (the
    probes look it up and have no right to create it), deploy/rbac's own account and namespace left out."""
    subject = [{"kind": "ServiceAccount", "name": job.name, "namespace": job.namespace}]
    out: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "ServiceAccount",
                                  "metadata": _meta(job, job.name, job.namespace), "automountServiceAccountToken": True}]

    def renamed(name: str) -> str:
        return f"{job.name}-{name.removeprefix('chaoslab-')}"

    for doc in shipped_rbac(rbac_dir):
        kind, meta = doc["kind"], doc["metadata"]
        if kind == "Namespace" and meta["name"] == CANARY_NAMESPACE:
            out.append({**doc, "metadata": _meta(job, CANARY_NAMESPACE)})
        elif kind in _ROLE_KINDS:
            out.append({**doc, "metadata": _meta(job, renamed(meta["name"]), meta.get("namespace"))})
        elif kind in _BINDING_KINDS:
            out.append({**doc, "metadata": _meta(job, renamed(meta["name"]), meta.get("namespace")),
                        "roleRef": {**doc["roleRef"], "name": renamed(doc["roleRef"]["name"])}, "subjects": subject})
    return out


def render_cronjob(job: Job) -> list[dict[str, Any]]:
    """Every object to apply, in order: Namespace, RBAC, ConfigMap with the file(s), CronJob."""
    if job.api_version not in CRONJOB_VERSIONS:
        raise SpecError([f"--api-version {job.api_version!r}: one of {', '.join(CRONJOB_VERSIONS)}"])
    if job.time_zone and job.api_version != "batch/v1":
        raise SpecError([(f"--time-zone {job.time_zone}: spec.timeZone needs batch/v1 CronJobs on Kubernetes "
                          f"≥ 1.25 (GA in 1.27); with {job.api_version} the schedule runs in the "
                          f"kube-controller-manager's time zone (usually UTC): convert --cron to it")])
    config = f"{job.name}-spec"
    items = [{"key": config_key(rel), "path": rel} for rel in sorted(job.files)]
    results: dict[str, Any] = ({"persistentVolumeClaim": {"claimName": job.results_pvc}} if job.results_pvc
                               else {"emptyDir": {}})
    container = {
        "name": "chaoslab",
        "image": job.image,
        "imagePullPolicy": "IfNotPresent",
        "args": job.command(SPEC_DIR, RESULTS_DIR)[1:],  # the image's entrypoint is `chaoslab`
        "workingDir": WORKDIR,
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "CHAOSLAB_STATE_DIR", "value": "/tmp/chaoslab"},
                {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "resources": {k: dict(v) for k, v in job.resources.items()},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "spec", "mountPath": SPEC_DIR, "readOnly": True},
                         {"name": "results", "mountPath": RESULTS_DIR},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    pod = {
        "metadata": {"labels": _meta(job, job.name)["labels"]},
        "spec": {
            "serviceAccountName": job.name,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001},
            "containers": [container],
            "volumes": [{"name": "spec", "configMap": {"name": config, "items": items}},
                        {"name": "results", **results}, {"name": "tmp", "emptyDir": {}}],
        },
    }
    spec: dict[str, Any] = {
        "schedule": job.cron,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": job.starting_deadline,
        "successfulJobsHistoryLimit": job.history_success,
        "failedJobsHistoryLimit": job.history_failed,
        "jobTemplate": {
            "metadata": {"labels": _meta(job, job.name)["labels"]},
            # A failed chaos run is a finding (or a degraded cluster), never something to retry blindly.
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": job.active_deadline, "template": pod},
        },
    }
    if job.time_zone:
        spec["timeZone"] = job.time_zone
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(job, job.namespace)},
        *render_rbac(job),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(job, config, job.namespace),
         "data": {config_key(rel): text for rel, text in sorted(job.files.items())}},
        {"apiVersion": job.api_version, "kind": "CronJob", "metadata": _meta(job, job.name, job.namespace),
         "spec": spec},
    ]


def _shell(args: Sequence[str]) -> str:
    import shlex

    return " ".join(a if a.startswith("$") else shlex.quote(a) for a in args)


def render_github(job: Job, source: str) -> dict[str, Any]:
    """A GitHub Actions workflow: `on: schedule` (GitHub's cron is always UTC) and a manual trigger, one
    run at a time, the run directories and reports uploaded. `source` is the file's path in the repository."""
    args = job.command(str(PurePosixPath(source).parent), "out")
    args[args.index("--runs-dir") + 1] = "runs"
    run = _shell([".venv/bin/" + args[0], *args[1:]])
    return {
        "name": job.name,
        "on": {"schedule": [{"cron": job.cron}], "workflow_dispatch": {}},
        "concurrency": {"group": job.name, "cancel-in-progress": False},
        "permissions": {"contents": "read"},
        "jobs": {"chaos": {
            "runs-on": ["self-hosted", "linux", "chaoslab"],
            "timeout-minutes": job.active_deadline // 60,
            "steps": [
                {"uses": "actions/checkout@v4"},
                {"run": "python3 -m venv .venv && .venv/bin/pip install -q ."},
                {"id": "chaos", "run": f"set +e\n{run}\necho \"code=$?\" >> \"$GITHUB_OUTPUT\"\n"},
                {"if": "always()", "uses": "actions/upload-artifact@v4",
                 "with": {"name": job.name, "path": "runs/\nout/", "if-no-files-found": "ignore"}},
                {"if": "always()", "run": "test ! -f out/summary.md || cat out/summary.md >> \"$GITHUB_STEP_SUMMARY\"\n"
                                          "exit \"${{ steps.chaos.outputs.code }}\"\n"},
            ],
        }},
    }


def render_gitlab(job: Job, source: str) -> dict[str, Any]:
    """A GitLab CI job that runs only in scheduled pipelines (the schedule itself — cron and time zone —
    is made under CI/CD → Schedules or through the API; see `gitlab_schedule_note`)."""
    args = job.command(str(PurePosixPath(source).parent), "out")
    args[args.index("--runs-dir") + 1] = "runs"
    artifacts: dict[str, Any] = {"when": "always", "paths": ["runs/", "out/"], "expire_in": "90 days"}
    if not job.gameday:
        artifacts["reports"] = {"junit": "out/junit.xml"}
    return {job.name: {
        "stage": "test",
        "tags": ["chaoslab"],
        "timeout": f"{job.active_deadline // 60}m",
        "resource_group": job.name,  # one scheduled run at a time, like concurrencyPolicy: Forbid
        "rules": [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}],
        "script": ["python3 -m venv .venv && .venv/bin/pip install -q .",
                   _shell([".venv/bin/" + args[0], *args[1:]])],
        "artifacts": artifacts,
    }}


def gitlab_schedule_note(job: Job) -> str:
    tz = job.time_zone or "UTC"
    return (f"# Create the pipeline schedule once (CI/CD → Schedules, or the API):\n"
            f"#   curl --request POST --header \"PRIVATE-TOKEN: $TOKEN\" \\\n"
            f"#     --form description={job.name} --form ref=main --form cron=\"{job.cron}\" "
            f"--form cron_timezone={tz} \\\n"
            f"#     \"$CI_API_V4_URL/projects/$CI_PROJECT_ID/pipeline_schedules\"\n")


def to_yaml(docs: Sequence[Mapping[str, Any]], header: str = "") -> str:
    """Multi-document YAML, keys in the order written, block style, long strings kept readable."""

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # never &id001 anchors: manifests are read by people and by kubectl

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    body = "---\n".join(yaml.dump(dict(d), Dumper=Dumper, sort_keys=False, width=1000, allow_unicode=True)
                        for d in docs)
    return header + body


# ---- asking the cluster -------------------------------------------------------------------------------
def served_cronjob_version(api: Any) -> str:
    """The newest CronJob version the apiserver serves: batch/v1 from 1.21, else batch/v1beta1 (1.20 serves
    batch/v1 for Jobs only, so the group version alone does not tell: its resource list does)."""
    from chaoslab.clients.kubeapi import ApiError

    for version in CRONJOB_VERSIONS:
        try:
            resources = api.get(f"/apis/{version}").get("resources", [])
        except ApiError as exc:
            if exc.status == 404:
                continue
            raise
        if any(r.get("name") == "cronjobs" for r in resources):
            return version
    raise SpecError(["the cluster serves no CronJob API (neither batch/v1 nor batch/v1beta1); pass --api-version"])


def api_path(obj: Mapping[str, Any]) -> str:
    """The collection path to POST `obj` to (for the server-side dry run)."""
    return ref(obj).collection


def dry_run(api: Any, docs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """POST every object with ?dryRun=All; (object, problem) for each the apiserver refuses."""
    from chaoslab.clients.kubeapi import ApiError

    problems = []
    for obj in docs:
        path = api_path(obj)
        resp = api.request("POST", path, body=obj, params={"dryRun": "All"})
        if resp.status_code == 409 and obj["kind"] == "Namespace":
            continue  # exists already: applying it is a no-op
        if not 200 <= resp.status_code < 300:
            problems.append((f"{obj['kind']}/{obj['metadata']['name']}",
                             str(ApiError.from_response("POST", path, resp))))
    return problems
