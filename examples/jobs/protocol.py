"""What the worker and the dispatcher share: the job payload and the load element.

A job is an iq set to a worker carrying `<job xmlns='urn:vinesctl:example:job:0' id='...'>`
with the work as text; the result echoes the element with the answer as text and the worker's
domain in `worker`. A worker's load is `<load xmlns='urn:vinesctl:load:0' jobs='N'
capacity='C'/>` in its presence (the server's own load presence uses the same namespace).
"""

from __future__ import annotations

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
