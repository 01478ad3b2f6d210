import time, anyio, httpx2, pytest, uvicorn, logging
from mcp import Client
from subagents.mcp_server import build_server
from subagents.http_app import HttpSecurity, build_http_app
from subagents.providers.testing import text
from tests.conftest import make_app
from tests.test_http_security import AGENT
pytestmark = pytest.mark.anyio

@pytest.mark.parametrize("i", range(4))
async def test_t(i, fake_model, project):
    T = {}
    def script(req):
        T["model"] = time.monotonic()
        return text("ok")
    fake_model.set_script(script)
    app = make_app(fake_model, project)
    server = build_server(app)
    asgi = build_http_app(server, HttpSecurity())
    srv = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=0, log_level="warning"))
    async with app, anyio.create_task_group() as tg:
        tg.start_soon(srv.serve)
        while not srv.started: await anyio.sleep(0.01)
        url = f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}/mcp"
        async with Client(url, mode="legacy") as client:
            t = time.monotonic()
            await client.call_tool(AGENT, {"task": "x"})
            print("call", round(time.monotonic() - t, 2), "model at", round(T["model"] - t, 2))
        srv.should_exit = True
