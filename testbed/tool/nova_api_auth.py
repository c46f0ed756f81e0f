"""The test bed's nova-api stands in for Keystone here: every caller is an admin.

Nova no longer ships a noauth pipeline, and Keystone does not run in the test
bed. This paste filter replaces `authtoken keystonecontext` in the pipeline:
the X-Auth-Token `user:project` names the caller (default admin:admin), with
the admin, member and reader roles, as Nova's old noauth2 middleware did.
Runs inside the tool virtualenv, next to Nova; never imported by nova-audit.
"""

from __future__ import annotations

from typing import Any

import webob.dec
from nova import context


def filter_factory(global_conf: Any, **local_conf: Any) -> Any:
    def wrap(app: Any) -> Any:
        @webob.dec.wsgify
        def middleware(req: webob.Request) -> Any:
            token = req.headers.get("X-Auth-Token") or "admin:admin"
            user, _, project = token.partition(":")
            req.environ["nova.context"] = context.RequestContext(
                user_id=user or "admin",
                project_id=project or user or "admin",
                roles=["admin", "member", "reader"],
                is_admin=True,
                request_id=req.environ.get("openstack.request_id"),
            )
            return req.get_response(app)

        return middleware

    return wrap
