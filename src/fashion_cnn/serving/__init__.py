"""Beyond the tutorial: serve the model over HTTP, with a page to upload or draw a picture.

    fashion-cnn serve runs/NAME        # then open http://127.0.0.1:8000/

``fashion_cnn.serving.app.create_app`` builds the FastAPI app (needs the ``serve`` extra:
``pip install 'fashion-cnn[serve]'``); ``fashion_cnn.serving.limits`` holds its limits and imports nothing heavy.
"""
