"""The GitLab CI template's script lines, run as a GitLab shell executor would run
them (template variables, then the job's; before_script and script in one shell
with errexit, after_script in another; artifact paths expanded in the project
directory), against the real binary. Loopback only: a TCP server on 127.0.45.1."""
import os
import re
import subprocess
import sys

import yaml

from rwtest import RW, RwTestCase, TcpServer

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integrations",
                        "gitlab", "runwarden.gitlab-ci.yml")
ADDR = "127.0.45.1"


def expand(value, env):
    """$NAME and ${NAME} from env, as GitLab expands variables and artifact paths."""
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), value)


class GitlabTemplate(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TcpServer(ADDR)
        with open(TEMPLATE) as f:
            cls.tpl = yaml.safe_load(f)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def policy(self, steps=""):
        path = os.path.join(self.tmp, "project", "policy.yaml")
        with open(path, "w") as f:
            f.write(f"version: 1\nmode: enforce\nallow:\n  - ip: {ADDR}\n"
                    f"    ports: [{self.srv.port}]\n{steps}")
        return "policy.yaml"

    def job(self, **job_vars):
        """Runs .runwarden with the job's variables; returns (rc, output, env)."""
        proj = os.path.join(self.tmp, "project")
        os.makedirs(proj, exist_ok=True)
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        if not os.path.exists(os.path.join(bindir, "runwarden")):
            os.symlink(os.path.abspath(RW), os.path.join(bindir, "runwarden"))
        env = {**os.environ, "PATH": bindir + ":" + os.environ["PATH"],
               "CI_PROJECT_DIR": proj, "CI_JOB_STAGE": "test", "GITLAB_CI": "true"}
        for k, v in {**self.tpl["variables"], **job_vars}.items():
            env[k] = expand(str(v), env)
        t = self.tpl[".runwarden"]
        main = "\n".join(t["before_script"] + t["script"])
        p = subprocess.run(["bash", "-e", "-c", main], cwd=proj, env=env, capture_output=True,
                           text=True, timeout=180)
        a = subprocess.run(["bash", "-c", "\n".join(t["after_script"])], cwd=proj, env=env,
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr + a.stdout + a.stderr, env

    def artifacts(self, env):
        """The artifact paths as the runner expands them, relative to the project."""
        art = self.tpl[".runwarden"]["artifacts"]
        paths = [expand(x, env) for x in art["paths"]]
        junit = expand(art["reports"]["junit"], env)
        for x in paths + [junit]:
            self.assertFalse(os.path.isabs(x), x)  # GitLab uploads from the project only
        proj = env["CI_PROJECT_DIR"]
        return [os.path.join(proj, x) for x in paths], os.path.join(proj, junit)

    def script(self, addr=ADDR):
        return (f"{sys.executable} -c 'import socket; socket.create_connection(("
                f"\"{addr}\", {self.srv.port}), timeout=5).close()'")

    def test_any_policy_and_custom_out(self):
        # A policy without a section for the stage: the job runs under its top level.
        os.makedirs(os.path.join(self.tmp, "project"), exist_ok=True)
        rc, out, env = self.job(RUNWARDEN_MODE="enforce", RUNWARDEN_POLICY=self.policy(),
                                RUNWARDEN_OUT="rw-evidence", RUNWARDEN_SCRIPT=self.script())
        self.assertEqual(rc, 0, out)
        paths, junit = self.artifacts(env)
        self.assertEqual(paths, [os.path.join(env["CI_PROJECT_DIR"], "rw-evidence/")])
        for p in ("summary.json", "events.ndjson", "report.html"):
            self.assertTrue(os.path.exists(os.path.join(paths[0], p)), (p, out))
        self.assertTrue(os.path.exists(junit), out)
        self.assertFalse(os.path.exists(os.path.join(env["CI_PROJECT_DIR"], "runwarden-out")))

    def test_default_out_is_uploaded(self):
        os.makedirs(os.path.join(self.tmp, "project"), exist_ok=True)
        rc, out, env = self.job(RUNWARDEN_SCRIPT="true")
        self.assertEqual(rc, 0, out)
        paths, junit = self.artifacts(env)
        self.assertTrue(os.path.exists(os.path.join(paths[0], "summary.json")), out)
        self.assertTrue(os.path.exists(junit), out)

    def test_step_sections_by_stage(self):
        os.makedirs(os.path.join(self.tmp, "project"), exist_ok=True)
        pol = self.policy("steps:\n  test:\n")
        rc, out, _ = self.job(RUNWARDEN_MODE="enforce", RUNWARDEN_POLICY=pol,
                              RUNWARDEN_STEP="$CI_JOB_STAGE", RUNWARDEN_SCRIPT=self.script())
        self.assertEqual(rc, 0, out)
        # asking for a section the policy lacks is refused before the job runs
        rc, out, _ = self.job(RUNWARDEN_MODE="enforce", RUNWARDEN_POLICY=self.policy(),
                              RUNWARDEN_STEP="$CI_JOB_STAGE", RUNWARDEN_SCRIPT=self.script())
        self.assertNotEqual(rc, 0)
        self.assertIn("test", out)

    def test_enforce_denies_what_the_policy_leaves_out(self):
        os.makedirs(os.path.join(self.tmp, "project"), exist_ok=True)
        rc, out, env = self.job(RUNWARDEN_MODE="enforce", RUNWARDEN_POLICY=self.policy(),
                                RUNWARDEN_SCRIPT=self.script("127.0.45.2"))
        self.assertNotEqual(rc, 0, out)
        _, junit = self.artifacts(env)
        with open(junit) as f:
            self.assertIn('failures="1"', f.read())
