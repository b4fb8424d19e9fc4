"""A Hugging Face Space for a scene_cls model: copy this file and requirements.txt into the Space, with the model
beside them (model.onnx from `scene-cls export`, or model.pkl from `scene-cls train`) and, if you like, a folder
examples/ of a few images. The Space runs `python app.py`; Gradio listens where the Space tells it to.

Share model.onnx, not model.pkl: a .pkl is a Python pickle, and loading it runs whatever code it holds; an ONNX file
holds no code, is the one served when both are there, and needs neither torch nor fastai (the light way, a faster
build and start on the free CPU: use requirements-onnx.txt as requirements.txt and copy the package folder
scene_cls/ beside this file).

A public Space is open to anyone: the app keeps its limits (16 files of 20 MB in one request, 16 requests waiting,
uploads deleted once answered), and asks for a login when the Space has a secret SCENE_CLS_AUTH = USER:PASSWORD."""
from scene_cls.app import space_app, launch_app

demo = space_app('.')

if __name__ == '__main__': launch_app(demo)   # the upload limits, and a login when SCENE_CLS_AUTH is set
