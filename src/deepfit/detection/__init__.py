"""Object detection runs (issue #18): ``deepfit train --data <boxes>`` dispatches here
(``run.train_detection``); ``deepfit predict`` on a detection run goes to
``predict.predict_folder``. docs/detection.md describes them."""
