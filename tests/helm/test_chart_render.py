"""The chart as files and as `helm template` renders it, without a cluster.

`helm lint --strict` is clean for every values file in the chart's ci/ folder (the main value
combinations: the defaults, a namespaced install, a minimal one); each combination renders what it
promises; values.yaml documents every key and values.schema.json rejects unknown ones; the CRD copies
in the chart are the repository's CRDs; every RBAC rule carries a comment, and none grants deletion,
Secrets or wildcards. MyPage's exposure: its public Service has no metrics port, header mode brings a
NetworkPolicy admitting only the auth proxy, and header or none mode behind a NodePort or LoadBalancer
Service is refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rental_devenv import helm

CHART = helm.CHART
REPO = CHART.parent.parent
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
REQUIRED = ("partners.payment.url=https://pay.example", "partners.shipping.url=https://ship.example")


def render(binary: Path, *files: Path, set_values: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Render with the ci/ values files given, or else with just the required URLs set."""
    return helm.template(binary, *files, set_values=(*(() if files else REQUIRED), *set_values))


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = helm.select(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}: {[o['metadata']['name'] for o in found]}"
    return found[0]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container(deployment)["env"]}


# -- the files ------------------------------------------------------------------------------------------


def test_ci_values_cover_the_main_combinations() -> None:
    assert [path.name for path in CI_VALUES] == [
        "default-values.yaml",
        "keda-values.yaml",
        "minimal-values.yaml",
        "namespaced-values.yaml",
    ]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda path: path.stem)
def test_helm_lint_is_clean(helm_binary: Path, values: Path) -> None:
    result = helm.run(helm_binary, "lint", "--strict", str(CHART), "--values", str(values))
    problems = [line for line in result.stdout.splitlines() if line.startswith(("[WARNING]", "[ERROR]"))]
    assert problems == [], result.stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_chart_crds_are_the_repository_crds() -> None:
    """files/crds/ must be byte-identical to crds/ (generated from the models); copy them over when
    this fails: `cp crds/*.yaml charts/purifier-rental-operator/files/crds/`."""
    source = {path.name: path.read_bytes() for path in (REPO / "crds").glob("*.yaml")}
    copies = {path.name: path.read_bytes() for path in (CHART / "files" / "crds").glob("*.yaml")}
    assert sorted(copies) == sorted(source)
    stale = [name for name in source if copies[name] != source[name]]
    assert stale == [], f"stale CRD copies in the chart: {stale}"


def _value_lines() -> list[tuple[int, str, str]]:
    """(indent, key, the line above) for every key line of values.yaml."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    found = []
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w-]*):", line)
        if match:
            found.append((len(match.group(1)), match.group(2), lines[number - 1].strip() if number else ""))
    return found


# Keys whose contents are another project's format, documented there: Kubernetes resource quantities
# and prometheus-adapter rules (each rule carries a comment above its list item instead).
_FOREIGN_BLOCKS = {"resources", "rules", "externalRules"}


def test_every_values_key_has_a_comment() -> None:
    # Only the keys inside a foreign block go without a comment of their own (the block's key is
    # commented).
    uncommented = []
    inside_foreign = -1
    for indent, key, above in _value_lines():
        if inside_foreign >= 0 and indent <= inside_foreign:
            inside_foreign = -1
        if inside_foreign >= 0:
            continue
        if not above.startswith("#"):
            uncommented.append(key)
        if key in _FOREIGN_BLOCKS:
            inside_foreign = indent
    assert uncommented == []


def _schema_objects(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if node.get("type") == "object" and "properties" in node:
        found.append((path or "<root>", node))
        for key, child in node["properties"].items():
            found += _schema_objects(child, f"{path}.{key}" if path else key)
    for key in ("anyOf", "oneOf"):
        for child in node.get(key, []):
            found += _schema_objects(child, path)
    if isinstance(node.get("items"), dict):
        found += _schema_objects(node["items"], f"{path}[]")
    return found


def test_schema_rejects_unknown_keys_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects = [
        path for path, node in _schema_objects(schema) if node.get("additionalProperties") is not False
    ]
    assert open_objects == []


def _keys(values: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        keys.add(path)
        if isinstance(value, dict) and value and key != "resources":
            keys |= _keys(value, path)
    return keys


def _schema_keys(node: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, child in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        keys.add(path)
        if child.get("type") == "object" and key != "resources" and "properties" in child:
            keys |= _schema_keys(child, path)
    return keys


def test_schema_and_values_describe_the_same_keys() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    # The affinity sub-keys are free-form Kubernetes structures, `global` is Helm's own.
    # So are label selectors (matchLabels, matchExpressions).
    schema_keys = {k for k in _schema_keys(schema) if not re.search(r"affinity\.|Selector\.|^global$", k)}
    assert _keys(values) == schema_keys


@pytest.mark.parametrize(
    "assignment",
    [
        "replica=2",
        "operator.replica=2",
        "operator.peering.lifetime=5",
        "mypage.auth.secret=x",
        "crds.keeep=true",
        "mypage.auth.proxy.podSelector.matchLabel.app=proxy",
        "mypage.networkPolicy.enable=true",
    ],
)
def test_unknown_keys_fail_the_render(helm_binary: Path, assignment: str) -> None:
    with pytest.raises(RuntimeError, match="additional properties"):
        render(helm_binary, set_values=(assignment,))


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("partners.payment.url=", "partners.payment.url is required"),
        ("operator.peering.enabled=false", "operator.replicas > 1 needs operator.peering.enabled"),
        ("mypage.auth.tokenSecret=too-short", "at least 32 characters"),
        ("mypage.auth.mode=open", "mypage.auth.mode"),
        ("partners.shipping.url=ftp://ship", "partners.shipping.url"),
    ],
)
def test_bad_values_fail_with_a_message_naming_them(helm_binary: Path, assignment: str, message: str) -> None:
    with pytest.raises(RuntimeError, match=re.escape(message)):
        render(helm_binary, set_values=(assignment,))


# -- the default combination ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default(helm_binary: Path) -> list[dict[str, Any]]:
    return render(helm_binary, CHART / "ci" / "default-values.yaml")


def test_default_objects(default: list[dict[str, Any]]) -> None:
    kinds = sorted(
        f"{o['kind']}/{o['metadata']['name']}" for o in default if o["kind"] != "CustomResourceDefinition"
    )
    assert kinds == [
        "ClusterKopfPeering/rental-purifier-rental-operator",
        "ClusterRole/rental-purifier-rental-operator",
        "ClusterRole/rental-purifier-rental-operator-mypage",
        "ClusterRoleBinding/rental-purifier-rental-operator",
        "ClusterRoleBinding/rental-purifier-rental-operator-mypage",
        "Deployment/rental-purifier-rental-operator",
        "Deployment/rental-purifier-rental-operator-mypage",
        "PodDisruptionBudget/rental-purifier-rental-operator",
        "PodDisruptionBudget/rental-purifier-rental-operator-mypage",
        "Secret/rental-purifier-rental-operator-mypage",
        "Service/rental-purifier-rental-operator-metrics",
        "Service/rental-purifier-rental-operator-mypage",
        "Service/rental-purifier-rental-operator-mypage-metrics",
        "ServiceAccount/rental-purifier-rental-operator",
        "ServiceAccount/rental-purifier-rental-operator-mypage",
        # The customer web app (web.enabled, default true): what MyPage may write, held by a policy.
        "ValidatingAdmissionPolicy/rental-purifier-rental-operator-web-writes",
        "ValidatingAdmissionPolicyBinding/rental-purifier-rental-operator-web-writes",
    ]
    crds = sorted(o["metadata"]["name"] for o in helm.select(default, "CustomResourceDefinition"))
    assert crds == sorted(path.stem for path in (REPO / "crds").glob("*.yaml"))
    for crd in helm.select(default, "CustomResourceDefinition"):
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        source = yaml.safe_load((REPO / "crds" / f"{crd['metadata']['name']}.yaml").read_text())
        assert crd["spec"] == source["spec"], "the template changed a CRD's spec"


def test_default_operator_is_two_peered_replicas_rolled_new_first(default: list[dict[str, Any]]) -> None:
    deployment = one(default, "Deployment", "rental-purifier-rental-operator")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    main = container(deployment)
    assert main["args"] == [
        "run",
        "--liveness=http://0.0.0.0:8081/healthz",
        "--peering=rental-purifier-rental-operator",
        "--peering-lifetime=15",
    ]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    assert {p["name"]: p["containerPort"] for p in main["ports"]} == {"liveness": 8081, "metrics": 9090}
    assert set(main["resources"]) == {"requests", "limits"}
    env = env_of(deployment)
    assert env["RENTAL_PAYMENT_URL"] == "https://payments.example.com"
    assert env["RENTAL_MYPAGE_ENABLED"] == "false"
    assert "RENTAL_NAMESPACES" not in env
    assert "RENTAL_PAYMENT_API_KEY" not in env, "no keys given: no Secret reference"
    pdb = one(default, "PodDisruptionBudget", "rental-purifier-rental-operator")
    assert pdb["spec"]["minAvailable"] == 1


@pytest.mark.parametrize(
    "name", ["rental-purifier-rental-operator", "rental-purifier-rental-operator-mypage"]
)
def test_every_pod_is_locked_down(default: list[dict[str, Any]], name: str) -> None:
    pod = one(default, "Deployment", name)["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,  # so the process can read Secrets mounted with mode 0400
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    security = pod["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # The only writable place is an emptyDir on /tmp.
    assert {"name": "tmp", "mountPath": "/tmp"} in pod["containers"][0]["volumeMounts"]


def test_default_mypage_is_readiness_gated_and_drains(default: list[dict[str, Any]]) -> None:
    deployment = one(default, "Deployment", "rental-purifier-rental-operator-mypage")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    main = container(deployment)
    assert main["args"] == ["mypage", "--metrics-port=9090"]
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    env = env_of(deployment)
    assert env["RENTAL_MYPAGE_AUTH"] == "token"
    assert env["RENTAL_MYPAGE_TOKEN_SECRET_FILE"] == "/etc/rental/mypage/token-secret"
    secret = one(default, "Secret", "rental-purifier-rental-operator-mypage")
    assert len(secret["data"]["token-secret"]) >= 44  # a generated key of 48 characters, base64-encoded
    assert not helm.select(default, "NetworkPolicy"), "token mode: none unless mypage.networkPolicy.enabled"


def test_default_mypage_serves_customers_and_metrics_through_separate_services(
    default: list[dict[str, Any]],
) -> None:
    """Whatever publishes MyPage's Service (an Ingress, a LoadBalancer) never publishes its metrics."""
    public = one(default, "Service", "rental-purifier-rental-operator-mypage")
    assert {p["name"]: p["port"] for p in public["spec"]["ports"]} == {"http": 80}
    assert "rental.purifier.io/metrics" not in public["metadata"]["labels"], "not scraped"
    metrics = one(default, "Service", "rental-purifier-rental-operator-mypage-metrics")
    assert metrics["spec"]["type"] == "ClusterIP"
    assert [(p["name"], p["port"], p["targetPort"]) for p in metrics["spec"]["ports"]] == [
        ("metrics", 9090, "metrics")
    ]
    assert metrics["metadata"]["labels"]["rental.purifier.io/metrics"] == "true"
    pod_labels = one(default, "Deployment", "rental-purifier-rental-operator-mypage")["spec"]["template"][
        "metadata"
    ]["labels"]
    assert metrics["spec"]["selector"] == public["spec"]["selector"]
    assert metrics["spec"]["selector"].items() <= pod_labels.items()


def test_service_names_fit_63_characters(helm_binary: Path) -> None:
    objects = render(helm_binary, set_values=(f"fullnameOverride={'r' * 63}",))
    names = sorted(s["metadata"]["name"] for s in helm.select(objects, "Service"))
    assert names == sorted([f"{'r' * 55}-metrics", f"{'r' * 56}-mypage", f"{'r' * 48}-mypage-metrics"])
    assert all(len(name) <= 63 for name in names)


def _rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for o in objects if o["kind"] in ("ClusterRole", "Role") for rule in o["rules"]]


def test_default_rbac_deletes_only_payments_no_secrets_no_wildcards(default: list[dict[str, Any]]) -> None:
    for rule in _rules(default):
        # The one deletion: settled Payments beyond RENTAL_PAYMENT_HISTORY (monthly billing), by name.
        if "delete" in rule["verbs"]:
            assert (rule["apiGroups"], rule["resources"], rule["verbs"]) == (
                ["rental.purifier.io"],
                ["payments"],
                ["delete"],
            )
        assert "deletecollection" not in rule["verbs"]
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "secrets" not in rule["resources"]
    operator_rules = one(default, "ClusterRole", "rental-purifier-rental-operator")["rules"]
    granted = {
        (group, resource): rule["verbs"]
        for rule in operator_rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted[("rental.purifier.io", "purifiers")] == ["get", "list", "watch"]
    assert granted[("kopf.dev", "clusterkopfpeerings")] == ["get", "list", "watch", "patch"]
    assert granted[("", "events")] == ["create"]
    assert ("", "namespaces") not in granted, "cluster-wide: Kopf does not list namespaces"
    mypage_rules = one(default, "ClusterRole", "rental-purifier-rental-operator-mypage")["rules"]
    # MyPage reads; the customer web app beside it writes Rentals only (create, patch), nothing else.
    writes = [
        (r["resources"], r["verbs"]) for r in mypage_rules if set(r["verbs"]) - {"get", "list", "watch"}
    ]
    assert writes == [(["rentals"], ["create", "patch"])]


def test_every_rbac_rule_in_the_templates_has_a_comment() -> None:
    for template in ("_rbac.tpl", "rbac.yaml"):
        lines = (CHART / "templates" / template).read_text().splitlines()
        for number, line in enumerate(lines):
            if line.lstrip().startswith("- apiGroups:"):
                assert lines[number - 1].lstrip().startswith("#"), (
                    f"{template}:{number + 1}: rule without a comment"
                )


# -- the other combinations -----------------------------------------------------------------------------


def test_namespaced_install_is_confined_to_its_namespaces(helm_binary: Path) -> None:
    objects = render(helm_binary, CHART / "ci" / "namespaced-values.yaml")
    namespaces = ["shop-east", "shop-west"]
    cluster_role = one(objects, "ClusterRole")
    assert [(r["resources"], r["verbs"]) for r in cluster_role["rules"]] == [
        (["customresourcedefinitions"], ["list", "watch"]),
        (["namespaces"], ["list", "watch"]),
    ]
    roles = helm.select(objects, "Role")
    assert sorted((r["metadata"]["namespace"], r["metadata"]["name"]) for r in roles) == sorted(
        (ns, name)
        for ns in namespaces
        for name in ("rental-purifier-rental-operator", "rental-purifier-rental-operator-mypage")
    )
    assert len(helm.select(objects, "RoleBinding")) == 4
    peerings = helm.select(objects, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == namespaces
    assert not helm.select(objects, "ClusterKopfPeering")
    operator = one(objects, "Deployment", "rental-purifier-rental-operator")
    assert operator["spec"]["replicas"] == 3
    env = env_of(operator)
    assert env["RENTAL_NAMESPACES"] == "shop-east,shop-west"
    assert env["RENTAL_SMS_URL"] == "https://sms.example.com"
    for variable, key in [
        ("RENTAL_PAYMENT_API_KEY_FILE", "payment-api-key"),
        ("RENTAL_SMS_API_KEY_FILE", "sms-api-key"),
    ]:
        assert env[variable] == f"/etc/rental/partners/{key}"  # mounted files of the Secret
    assert not helm.select(objects, "Secret"), "an existing Secret is used, none is created"
    mypage = one(objects, "Deployment", "rental-purifier-rental-operator-mypage")
    assert "replicas" not in mypage["spec"], "the autoscaler owns the replica count"
    assert env_of(mypage)["RENTAL_MYPAGE_IDENTITY_HEADER"] == "X-Customer-Id"
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selected = monitor["spec"]["selector"]["matchLabels"]
    scraped = [
        s for s in helm.select(objects, "Service") if selected.items() <= s["metadata"]["labels"].items()
    ]
    assert sorted(s["metadata"]["name"] for s in scraped) == [
        "rental-purifier-rental-operator-metrics",
        "rental-purifier-rental-operator-mypage-metrics",
    ]
    assert all(any(p["name"] == "metrics" for p in s["spec"]["ports"]) for s in scraped)


def test_minimal_install_is_one_standalone_operator(helm_binary: Path) -> None:
    objects = render(helm_binary, CHART / "ci" / "minimal-values.yaml")
    assert sorted(o["kind"] for o in objects) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Secret",
        "Service",
        "ServiceAccount",
    ]
    operator = one(objects, "Deployment")
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}, "two standalone operators must never overlap"
    assert not any(arg.startswith("--peering") for arg in container(operator)["args"])
    rules = one(objects, "ClusterRole")["rules"]
    assert not any("kopf.dev" in rule["apiGroups"] for rule in rules)
    secret = one(objects, "Secret")
    assert secret["stringData"] == {"payment-api-key": "pay-key", "shipping-api-key": "ship-key"}
    env = env_of(operator)
    assert env["RENTAL_PAYMENT_API_KEY_FILE"] == "/etc/rental/partners/payment-api-key"
    volumes = operator["spec"]["template"]["spec"]["volumes"]
    assert {"partner-keys": secret["metadata"]["name"]}.items() <= {
        v["name"]: v.get("secret", {}).get("secretName") for v in volumes
    }.items()


def test_crds_keep_and_enabled_switches(helm_binary: Path) -> None:
    loose = render(helm_binary, set_values=("crds.keep=false",))
    assert all("annotations" not in crd["metadata"] for crd in helm.select(loose, "CustomResourceDefinition"))
    assert len(helm.select(loose, "CustomResourceDefinition")) == 4
    none = render(helm_binary, set_values=("crds.enabled=false",))
    assert helm.select(none, "CustomResourceDefinition") == []


def test_peering_crds_ship_in_the_crds_folder() -> None:
    documents = list(yaml.safe_load_all((CHART / "crds" / "kopf-peering.yaml").read_text()))
    assert sorted(d["metadata"]["name"] for d in documents) == [
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    ]


# -- MyPage's exposure by auth mode ---------------------------------------------------------------------

MYPAGE_POD = {
    "app.kubernetes.io/name": "purifier-rental-operator",
    "app.kubernetes.io/instance": "rental",
    "app.kubernetes.io/component": "mypage",
}
PROXY = ("mypage.auth.proxy.podSelector.matchLabels.app=oauth2-proxy",)


def test_header_mode_admits_only_the_auth_proxy_to_mypage(helm_binary: Path) -> None:
    """mypage.md: in header mode MyPage trusts the header, so only the proxy may reach it."""
    objects = render(helm_binary, CHART / "ci" / "namespaced-values.yaml")
    policy = one(objects, "NetworkPolicy", "rental-purifier-rental-operator-mypage")
    mypage = one(objects, "Deployment", "rental-purifier-rental-operator-mypage")
    assert policy["spec"]["podSelector"] == {"matchLabels": MYPAGE_POD}
    assert MYPAGE_POD.items() <= mypage["spec"]["template"]["metadata"]["labels"].items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    http, metrics = policy["spec"]["ingress"]
    assert http == {
        "from": [
            {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "oauth2-proxy"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "auth"}},
            }
        ],
        "ports": [{"port": 8080, "protocol": "TCP"}],
    }
    assert metrics == {
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        "ports": [{"port": 9090, "protocol": "TCP"}],
    }
    container_ports = {p["name"]: p["containerPort"] for p in container(mypage)["ports"]}
    assert container_ports == {"http": 8080, "metrics": 9090}


def test_network_policy_defaults_keep_the_proxy_in_its_namespace_and_metrics_open(helm_binary: Path) -> None:
    objects = render(helm_binary, set_values=("mypage.auth.mode=header", *PROXY))
    http, metrics = one(objects, "NetworkPolicy")["spec"]["ingress"]
    # No namespaceSelector: the release's namespace only (an empty one would mean every namespace).
    assert http["from"] == [{"podSelector": {"matchLabels": {"app": "oauth2-proxy"}}}]
    # No `from`: any pod of the cluster may scrape, wherever Prometheus runs (the port is on the
    # ClusterIP metrics Service only).
    assert metrics == {"ports": [{"port": 9090, "protocol": "TCP"}]}


def test_network_policy_in_token_mode_behind_a_value(helm_binary: Path) -> None:
    assert not helm.select(render(helm_binary, set_values=PROXY), "NetworkPolicy")
    objects = render(helm_binary, set_values=("mypage.networkPolicy.enabled=true", *PROXY))
    assert one(objects, "NetworkPolicy")["spec"]["podSelector"] == {"matchLabels": MYPAGE_POD}
    without_mypage = render(
        helm_binary, set_values=("mypage.enabled=false", "mypage.auth.mode=header", *PROXY)
    )
    assert not helm.select(without_mypage, "NetworkPolicy")


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (
            ("mypage.auth.mode=header",),
            "mypage.auth.proxy.podSelector is required with mypage.auth.mode=header",
        ),
        (
            ("mypage.networkPolicy.enabled=true",),
            "mypage.auth.proxy.podSelector is required with mypage.auth.mode=token and"
            " mypage.networkPolicy.enabled",
        ),
    ],
)
def test_network_policy_needs_the_proxy_named(
    helm_binary: Path, assignments: tuple[str, ...], message: str
) -> None:
    with pytest.raises(RuntimeError, match=re.escape(message)):
        render(helm_binary, set_values=assignments)


@pytest.mark.parametrize("mode", ["header", "none"])
@pytest.mark.parametrize("service_type", ["LoadBalancer", "NodePort"])
def test_header_or_none_mode_is_never_published_outside_the_cluster(
    helm_binary: Path, mode: str, service_type: str
) -> None:
    with pytest.raises(
        RuntimeError,
        match=re.escape(f"mypage.service.type={service_type} is refused with mypage.auth.mode={mode}:"),
    ):
        render(
            helm_binary,
            set_values=(f"mypage.auth.mode={mode}", f"mypage.service.type={service_type}", *PROXY),
        )


def test_token_mode_may_be_published_and_header_mode_behind_clusterip(helm_binary: Path) -> None:
    published = render(helm_binary, set_values=("mypage.service.type=LoadBalancer",))
    assert (
        one(published, "Service", "rental-purifier-rental-operator-mypage")["spec"]["type"] == "LoadBalancer"
    )
    assert one(published, "Service", "rental-purifier-rental-operator-mypage-metrics")["spec"]["type"] == (
        "ClusterIP"
    ), "the metrics Service never follows mypage.service.type"
    internal = render(
        helm_binary, set_values=("mypage.auth.mode=none", "mypage.networkPolicy.enabled=true", *PROXY)
    )
    assert one(internal, "Service", "rental-purifier-rental-operator-mypage")["spec"]["type"] == "ClusterIP"


def test_public_url_defaults_and_examples_are_https(default: list[dict[str, Any]]) -> None:
    """Minted links carry a customer's token: the chart never suggests sending them over http."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["mypage"]["publicUrl"].startswith("https://")
    assert env_of(one(default, "Deployment", "rental-purifier-rental-operator-mypage"))[
        "RENTAL_MYPAGE_PUBLIC_URL"
    ].startswith("https://")
    lines = (CHART / "values.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("publicUrl:"))
    comment = []
    for line in reversed(lines[:start]):
        if not line.strip().startswith("#"):
            break
        comment.append(line)
    assert comment and not any("http://" in line for line in comment)
    docs = [
        line for line in (REPO / "docs" / "deployment.md").read_text().splitlines() if "publicUrl" in line
    ]
    assert docs and not any("http://" in line for line in docs)
    assert any("https://" in line for line in docs)
