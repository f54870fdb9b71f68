"""The deployment files: the compose file is valid and complete, the image has a target for every
service, the RabbitMQ definitions match the topology the code declares (and load into RabbitMQ), the
Kubernetes manifests probe every HTTP service, and the dashboard only charts metrics that exist. Clients
reach the HTTP services only through a buffering proxy, and identity counts that proxy (PROXY_HOPS)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from kombu import Connection

from support import ROOT
from support.rabbitmq import RabbitVhost, rabbitmq_available
from tests import backends

HTTP_SERVICES = {"identity": 8001, "tenancy": 8002, "notifier": 8003, "web": 8000}
API_SERVICES = ("identity", "tenancy")  # their readiness for requests leaves the bus out


INSTALL_COMPOSE = ("neither `docker compose` (Compose v2, the docker-compose-plugin package) nor `docker-compose` "
                   "(Debian: sudo apt-get install docker-compose) is installed; the compose tests read the "
                   "checked-in docker-compose.yml through it (README, \"Running the tests\")")


def compose_command() -> list[str] | None:
    """Compose v2 (`docker compose`) where it answers, else v1 (`docker-compose`); None when neither does."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.fixture(scope="module")
def compose_cli() -> list[str]:
    command = compose_command()
    if command is None:
        if backends.CI:
            pytest.fail(INSTALL_COMPOSE)
        pytest.skip(INSTALL_COMPOSE)
    return command


@pytest.fixture(scope="module")
def compose(compose_cli) -> dict:
    """`docker compose config` as the operator's tool resolves it, with .env.example as the environment."""
    result = subprocess.run([*compose_cli, "--env-file", ".env.example", "config"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def dockerfile_targets() -> set[str]:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I))


def test_compose_runs_every_process_with_a_healthcheck(compose):
    services = compose["services"]
    expected = {"postgres", "rabbitmq", "mailpit", "migrate", "identity", "tenancy", "notifier",
                "notifier-consumer", "identity-relay", "tenancy-relay", "nginx", "web"}
    assert expected <= set(services)
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_every_image_target_exists(compose):
    targets = dockerfile_targets()
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            assert build.get("target") in targets, f"{name}: target {build.get('target')!r} not in the Dockerfile"


def test_services_wait_for_healthy_dependencies_and_migrations(compose):
    services = compose["services"]
    for name in ("identity", "tenancy", "notifier", "notifier-consumer", "identity-relay", "tenancy-relay"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["rabbitmq"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_runs_production_mode_with_secrets_supplied_not_baked(compose):
    for name in ("identity", "tenancy", "notifier", "notifier-consumer", "identity-relay", "tenancy-relay"):
        env = compose["services"][name]["environment"]
        assert env["APP_ENV"] == "production"
        assert env["SECRET_KEY"] == "change-me-change-me-change-me-change-me-change-me"  # from .env.example
        assert env["BROKER_URL"].startswith("amqp://")
        assert env["IDENTITY_DATABASE_URL"].startswith("postgresql+psycopg://")
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "SECRET_KEY" not in dockerfile and "PASSWORD" not in dockerfile
    assert re.search(r"^USER\s+threshold", dockerfile, re.M), "the image must not run as root"
    assert set(compose["volumes"]) >= {"postgres-data", "rabbitmq-data"}


def test_compose_refuses_to_start_without_secrets(compose, compose_cli, tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = subprocess.run([*compose_cli, "--env-file", str(empty), "config"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr or "POSTGRES_PASSWORD" in result.stderr, result.stderr


def test_the_production_settings_of_env_example_are_accepted_by_every_service():
    """.env.example's values are placeholders, but the same kind of value must pass validation."""
    env = {**dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#")),
           "TOTP_ENCRYPTION_KEYS": "ZGV2ZWxvcG1lbnQtb25seS10b3RwLWtleS0xMjM0NTY=".replace("ZGV2", "cHJv"),
           "SERVICE_CLIENTS": json.dumps({"tenancy": {"secret": "s" * 40, "scopes": ["accounts:read"]}})}
    from services.identity.settings import Settings as IdentitySettings
    from services.notifier.settings import Settings as NotifierSettings
    from services.tenancy.settings import Settings as TenancySettings
    from services.web.settings import Settings as WebSettings

    for settings in (IdentitySettings, TenancySettings, NotifierSettings, WebSettings):
        assert settings.from_env(env).app_env == "production"


def expected_definitions_topology() -> set:
    code = ("import json\n"
            "from services.notifier.settings import Settings\n"
            "from services.notifier.subscriptions import mail_queues\n"
            "s = Settings.from_env({'BUS_QUEUE_TYPE': 'quorum'})\n"
            "t = mail_queues(s.retry_delays, s.bus_queue_type)\n"
            "print(json.dumps([[q.name, q.queue_arguments or {}] for q in t.all()]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {(name, json.dumps(args, sort_keys=True)) for name, args in json.loads(out)}


def test_rabbitmq_definitions_match_the_topology_the_code_declares():
    definitions = json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
    declared = {(q["name"], json.dumps(q["arguments"], sort_keys=True)) for q in definitions["queues"]}
    assert declared == expected_definitions_topology()
    assert all(q["arguments"].get("x-queue-type") == "quorum" for q in definitions["queues"])
    assert {e["name"] for e in definitions["exchanges"]} == {"threshold.events", "threshold.retry", "threshold.dead"}
    assert any(p["definition"].get("dead-letter-exchange") == "threshold.dead" for p in definitions["policies"])


@pytest.mark.rabbitmq
def test_rabbitmq_definitions_load_and_the_services_declare_against_them():
    backends.require(rabbitmq_available(), "RabbitMQ")
    vhost = RabbitVhost(f"threshold-definitions-{os.getpid()}").create()
    try:
        definitions = json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
        text = json.dumps(definitions).replace('"vhost": "/"', f'"vhost": "{vhost.name}"')
        loaded = json.loads(text)
        loaded["vhosts"] = [{"name": vhost.name}]
        path = ROOT / "var" / f"definitions-{os.getpid()}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(loaded))
        try:
            subprocess.run(["rabbitmqctl", "-q", "import_definitions", str(path)], check=True, timeout=60,
                           capture_output=True)
        finally:
            path.unlink()
        from services.identity.settings import Settings
        from services.notifier.subscriptions import mail_queues
        from shared import bus

        settings = Settings.from_env({"BUS_QUEUE_TYPE": "quorum"})
        with Connection(vhost.url()) as connection:
            # as identity's relay declares it: equal arguments, so no PRECONDITION_FAILED
            bus.declare_topology(connection, (mail_queues(queue_type=settings.bus_queue_type),))
            depth = connection.default_channel.queue_declare("notifier.mail", passive=True).message_count
        assert depth == 0
    finally:
        vhost.delete()


def kubernetes_documents() -> list[dict]:
    kustomization = yaml.safe_load((ROOT / "deploy" / "k8s" / "kustomization.yaml").read_text())
    documents = []
    for resource in kustomization["resources"]:
        path = ROOT / "deploy" / "k8s" / resource
        assert path.exists(), resource
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def test_kubernetes_http_services_have_probes_resources_and_autoscalers():
    documents = kubernetes_documents()
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    autoscaled = {d["spec"]["scaleTargetRef"]["name"] for d in documents if d["kind"] == "HorizontalPodAutoscaler"}
    assert {"identity", "tenancy"} <= autoscaled
    for name in HTTP_SERVICES:
        containers = deployments[name]["spec"]["template"]["spec"]["containers"]
        http = containers[0]
        readiness = "/readyz/serving" if name in API_SERVICES else "/readyz"
        assert http["readinessProbe"]["httpGet"]["path"] == readiness, name
        assert http["livenessProbe"]["httpGet"]["path"] == "/healthz", name
    for deployment in deployments.values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["resources"]["requests"], (deployment["metadata"]["name"], container["name"])
    assert any(d["kind"] == "Job" and "migrate" in d["metadata"]["name"] for d in documents)


def test_dashboard_charts_only_metrics_the_services_export():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "threshold-dashboard.json").read_text())
    expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    names = set(re.findall(r"threshold_[a-z_]+", expressions))
    files = list((ROOT / "shared").rglob("*.py")) + list((ROOT / "services").rglob("*.py"))
    source = " ".join(p.read_text() for p in files)
    for name in names:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert base in source or base.removesuffix("_total") in source, f"{name} is not exported anywhere"


def test_compose_api_healthchecks_check_only_what_requests_need(compose):
    for name in API_SERVICES:
        command = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert "/readyz/serving'" in command, (name, command)


def test_compose_puts_nginx_in_front_of_every_http_service(compose):
    """No gunicorn port is published: nginx (deploy/nginx/nginx.conf) publishes each, and proxies it to that
    service. Port 8000 stays free for a future web service."""
    services = compose["services"]
    for name in HTTP_SERVICES:
        assert not services[name].get("ports"), f"{name} publishes gunicorn directly"
    nginx = services["nginx"]
    assert re.fullmatch(r"nginx:\d+\.\d+\.\d+(-alpine)?", nginx["image"]), "pin the nginx image to a release"
    assert {(p["published"], p["target"]) for p in nginx["ports"]} == {(port, port) for port in HTTP_SERVICES.values()}
    conf = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    servers = dict(re.findall(r"listen (\d+);.*?set \$service ([a-z-]+:\d+);", conf, re.S))
    assert servers == {str(port): f"{name}:{port}" for name, port in HTTP_SERVICES.items()}
    mounted = {tuple(volume.split(":")[:2]) for volume in nginx["volumes"]}
    assert {(str(ROOT / "deploy" / "nginx" / f), f"/etc/nginx/{f}") for f in ("nginx.conf", "problems.conf")} <= mounted


def test_identity_counts_the_proxy_in_front(compose):
    """Behind a proxy every client shares the proxy's address unless PROXY_HOPS counts it: then the per-IP
    limits are one global limit. Compose has nginx in front; Kubernetes has the ingress."""
    assert compose["services"]["identity"]["environment"]["PROXY_HOPS"] == "1"
    documents = kubernetes_documents()
    identity = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "identity")
    env = {e["name"]: e.get("value") for e in identity["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    assert env.get("PROXY_HOPS") == "1"
    ingresses = [d for d in documents if d["kind"] == "Ingress"]
    assert "identity" in {p["backend"]["service"]["name"] for i in ingresses for r in i["spec"]["rules"]
                          for p in r["http"]["paths"]}
    assert all(i["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"
               for i in ingresses)


def test_compose_gives_tenancy_the_page_that_accepts_invitations(compose):
    env_example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                       if line and not line.startswith("#"))
    assert env_example["INVITATION_ACCEPT_URL"].startswith("http")
    for name in ("tenancy", "tenancy-relay", "migrate"):
        assert compose["services"][name]["environment"]["INVITATION_ACCEPT_URL"] == env_example["INVITATION_ACCEPT_URL"]


def test_without_any_compose_the_tests_say_how_to_install_one(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, no docker-compose
    assert compose_command() is None
    assert "apt-get install docker-compose" in INSTALL_COMPOSE and "docker compose" in INSTALL_COMPOSE


def test_the_kubernetes_config_map_gives_tenancy_its_production_urls():
    """Production settings need INVITATION_ACCEPT_URL; the config map names it, so tenancy starts."""
    from services.tenancy.settings import Settings as TenancySettings

    [config_map] = [d for d in kubernetes_documents() if d["kind"] == "ConfigMap"]
    env = {**config_map["data"], "TENANCY_CLIENT_SECRET": "s" * 40,
           "TENANCY_DATABASE_URL": "postgresql+psycopg://threshold:x@postgres:5432/tenancy"}
    settings = TenancySettings.from_env(env)
    assert settings.invitation_accept_url == config_map["data"]["INVITATION_ACCEPT_URL"]
    assert settings.identity_url == "http://identity:8001"
