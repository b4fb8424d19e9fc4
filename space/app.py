"""A Hugging Face Space for a scene_cls model: copy this file and requirements.txt into the Space, with the model
beside them (model.pkl from `scene-cls train`, or model.onnx from `scene-cls export`) and, if you like, a folder
examples/ of a few images. The Space runs `python app.py`; Gradio listens where the Space tells it to."""
from scene_cls.app import space_app

demo = space_app('.')

if __name__ == '__main__': demo.launch()
