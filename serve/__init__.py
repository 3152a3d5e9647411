"""`sam2-trt serve`: SAM 2 as a service on one loaded model, for many clients at once.

    config.py      who may connect and every limit          security.py   token, Host/Origin, media root
    scheduler.py   the model thread: jobs, batched steps     sessions.py   image and video sessions by id
    propagation.py one client's propagation                  exports.py    DAVIS PNGs + COCO RLE as a zip
    schemas.py     request bodies                            app.py        the FastAPI app, errors as statuses
    routes_*.py    the API                                   static/       the web page (no build step, no CDN)

Needs the `serve` extra (FastAPI, uvicorn with WebSockets). Nothing here imports torch, the exporter or the
engine builder: the server runs on the runtime.
"""
