"""`sam2-trt serve MODEL_DIR`: the segmentation server and its web page (sam2_trt.serve), on one loaded model."""

from __future__ import annotations

import argparse
from pathlib import Path

from .bench import at_least


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve segmentation and tracking over HTTP, with a web page",
                       description="A segmentation server (FastAPI on uvicorn; the API at /docs) and a web page "
                                   "at / for many clients on one loaded model. Binds 127.0.0.1 unless told "
                                   "otherwise; any other address needs --token.")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a model directory from `sam2-trt export`")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=at_least(1), default=8000, help="port (default 8000)")
    p.add_argument("--backend", default="auto", help="auto, tensorrt, onnxruntime-cuda or onnxruntime-cpu")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (auto falls back to cpu)")
    p.add_argument("--token", help="bearer token every API request and WebSocket must carry (required for a "
                                   "non-loopback --host); or set SAM2_TRT_TOKEN. Write --token=VALUE when the "
                                   "token begins with '-' (one in 64 of secrets.token_urlsafe's do)")
    p.add_argument("--media-root", type=Path, metavar="DIR",
                   help="clients may open videos and images under DIR by relative path (nothing outside it)")
    p.add_argument("--max-sessions", type=at_least(1), default=16,
                   help="open sessions; past it the least recently used is closed (default 16)")
    p.add_argument("--session-ttl", type=_positive, default=1800.0, metavar="SECONDS",
                   help="an idle session is closed after this long (default 1800)")
    p.add_argument("--max-upload-mb", type=_positive, default=512.0, help="largest upload (default 512)")
    p.add_argument("--max-frames", type=at_least(1), default=3000, help="longest video accepted (default 3000)")
    p.add_argument("--max-side", type=at_least(8), default=4096,
                   help="largest image or frame side in pixels (default 4096)")
    p.add_argument("--max-queue", type=at_least(1), default=32,
                   help="model jobs that may wait; more get 503 with Retry-After (default 32)")
    p.add_argument("--max-points-per-side", type=at_least(1), default=32,
                   help="largest automatic-mask grid a client may ask for (default 32)")
    p.add_argument("--batch-sessions", type=at_least(1), default=None, metavar="N",
                   help="video sessions tracked together per step (default 16; 1: no batching across sessions)")
    p.add_argument("--batch-images", type=at_least(1), default=None, metavar="N",
                   help="images encoded together per call (default 4, the image encoder's profile)")
    p.add_argument("--work-dir", type=Path, metavar="DIR", help="uploads go here (default: a temporary directory)")
    p.add_argument("--export-dir", type=Path, metavar="DIR",
                   help="finished exports are kept here (default: inside the work directory)")
    p.set_defaults(run=run)


def run(args) -> int:
    import logging
    import os
    import sys

    from sam2_trt.core.specs import DYNAMIC_AXES
    from sam2_trt.serve.config import ServeConfig  # stdlib only: the options are checked before anything loads

    from .engines import install_build_on_first_use

    token = args.token or os.environ.get("SAM2_TRT_TOKEN") or None
    config = ServeConfig(host=args.host, port=args.port, token=token, media_root=args.media_root,
                         work_dir=args.work_dir, export_dir=args.export_dir, max_sessions=args.max_sessions,
                         session_ttl=args.session_ttl, max_upload_mb=args.max_upload_mb, max_frames=args.max_frames,
                         max_side=args.max_side, max_queue=args.max_queue,
                         max_points_per_side=args.max_points_per_side)
    try:
        import uvicorn

        from sam2_trt.serve.app import create_app
    except ImportError as e:
        print(f"sam2-trt serve: error: serving needs the serve extra ({e}): pip install 'sam2-trt[serve]'",
              file=sys.stderr)
        return 5
    from sam2_trt.runtime.model import SAM2Model

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    install_build_on_first_use()
    model = SAM2Model.load(args.model_dir, backend=args.backend, device=args.device)
    app = create_app(config, model, batch_sessions=args.batch_sessions or DYNAMIC_AXES["frames"].max,
                     batch_images=args.batch_images or DYNAMIC_AXES["images"].max)
    where = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}/"
    print(f"sam2-trt serve: {model.describe()} on {model.backend.name}; the page is {where}"
          f"{'#token=<your token>' if token else ''} and the API {where}docs", flush=True)
    # Graceful shutdown: a request under way (an export) gets this long to finish, then the rest is cancelled.
    # Idle keep-alive connections are kept 30 s (uvicorn's 5 s would close a client's connection during a
    # propagation it follows over the WebSocket).
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=10,
                timeout_keep_alive=30, ws_max_size=1 << 20)
    return 0
