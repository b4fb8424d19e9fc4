"""A Hugging Face Space for a scene_cls model: copy this file and requirements.txt into the Space, with the model
beside them (model.pkl from `scene-cls train`, or model.onnx from `scene-cls export`) and, if you like, a folder
examples/ of a few images. The Space runs `python app.py`; Gradio listens where the Space tells it to.

For a model.onnx, the light way (no torch or fastai; a faster build and start on the free CPU): use
requirements-onnx.txt as requirements.txt and copy the package folder scene_cls/ beside this file."""
from scene_cls.app import space_app, MAX_UPLOAD

demo = space_app('.')

if __name__ == '__main__': demo.launch(max_file_size=MAX_UPLOAD)   # a larger upload is refused before it is read
