"""What the worker and the dispatcher share: the job payload and the load element.

A job is an iq set to a worker carrying `<job xmlns='urn:vinesctl:example:job:0' id='...'>`
with the work as text; the result echoes the element with the answer as text and the worker's
domain in `worker`. A worker's load is `<load xmlns='urn:vinesctl:load:0' jobs='N'
capacity='C'/>` in its presence (the server's own load presence uses the same namespace).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from xml.etree.ElementTree import Element

NS_JOB = "urn:vinesctl:example:job:0"
NS_LOAD = "urn:vinesctl:load:0"
JOB = f"{{{NS_JOB}}}job"
LOAD = f"{{{NS_LOAD}}}load"
IDENTITY = ("automation", "worker")  # how the dispatcher recognises workers in disco#info


def job_element(job_id: str, payload: str, worker: str | None = None) -> Element:
    el = Element(JOB, {"id": job_id})
    if worker is not None:
        el.set("worker", worker)
    el.text = payload
    return el


def load_element(jobs: int, capacity: int) -> Element:
    return Element(LOAD, {"jobs": str(jobs), "capacity": str(capacity)})


def component_arguments(description: str) -> argparse.ArgumentParser:
    """The command line both examples share: which component, its secret, where to connect."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("domain", help="the component's domain, as in [components.DOMAIN]")
    parser.add_argument("--secret-file", required=True, type=Path)
    parser.add_argument("--server", default="127.0.0.1:5347", help="component listener")
    parser.add_argument("--xmpp-domain", default="localhost", help="the server's domain")
    return parser


def connection(args: argparse.Namespace) -> tuple[str, str, str, int, str]:
    """(domain, secret, host, port, server domain): the first arguments of both components."""
    host, _, port = args.server.rpartition(":")
    secret = args.secret_file.read_text().strip()
    return args.domain, secret, host, int(port), args.xmpp_domain
