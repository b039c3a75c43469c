"""Ray Serve LLM's OpenAI ingress with an optional API key.

Ray Serve LLM (2.60) has no authentication. :class:`ApiKeyIngress` subclasses its public
``OpenAiIngress`` and is plugged in through ``build_openai_app``'s documented
``ingress_cls_config``; every endpoint that takes the raw request (completions, chat, embeddings,
score, tokenize, detokenize, transcriptions) first checks ``Authorization: Bearer <key>`` and
answers 401 otherwise. ``/v1/models`` stays open (it lists model names only). The deployment gets
the key's SHA-256, never the key, so it does not show up in Serve's config or dashboard.
"""

import functools
import hashlib
import hmac

from fastapi import HTTPException, Request, status
from ray.serve.llm.ingress import OpenAiIngress

PROTECTED_ENDPOINTS = (
    "completions",
    "chat",
    "embeddings",
    "score",
    "tokenize",
    "detokenize",
    "transcriptions",
)


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _guarded(name: str):
    parent = getattr(OpenAiIngress, name)

    @functools.wraps(parent)  # FastAPI reads the parent's signature (body, request) through __wrapped__
    async def endpoint(self, body, request: Request):
        self._require_key(request)
        return await parent(self, body, request)

    return endpoint


class ApiKeyIngress(OpenAiIngress):
    def __init__(self, *args, api_key_sha256: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._api_key_sha256 = api_key_sha256

    def _require_key(self, request: Request) -> None:
        if not self._api_key_sha256:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            key_digest(token.strip()), self._api_key_sha256
        ):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or wrong API key: send 'Authorization: Bearer <key>' (the openai client's api_key)",
            )


for _name in PROTECTED_ENDPOINTS:
    setattr(ApiKeyIngress, _name, _guarded(_name))
