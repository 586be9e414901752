"""The web page (Gradio) over :class:`webapp.service.ReposeService`: choose a model, a source person and a target pose,
see the result, the intermediate panels and a pose sequence as an animation.

The page holds no logic of its own: each event handler reads its widgets, calls one service method, and puts the
result (or the service's :class:`webapp.service.AppError` message) back on the page. Requests queue and run one at a
time; uploads larger than the service's limit are refused by the server before they reach a handler.

Gradio's usage analytics are switched off before it is imported, and the page uses the browser's own fonts, so the
page makes no request to any other host.
"""
from __future__ import annotations

import os

os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
os.environ.setdefault('HF_HUB_DISABLE_TELEMETRY', '1')

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from webapp.service import (AppError, PoseSpace, ReposeService, SourceChoice, draw_skeleton,  # noqa: E402
                            pose_from_table, pose_table, walk_cycle)
from inference.media import load_image  # noqa: E402
from util.pose_util import draw_pose  # noqa: E402

TITLE = 'intrinsic-flow: human pose transfer'
INTRO = ('Re-pose a person: choose a **model**, a **source** person (upload a photo, or pick a test image of the '
         "model's dataset) and a **target pose** (a test pose, the pose of a person in another photo, a keypoint "
         'file), adjust its joints if you like, and press **Run**. Photos uploaded without keypoints go through the '
         'keypoint detector.')
SEQUENCE_SOURCES = ('walk cycle (from the target pose)', 'uploaded ZIP of keypoint files')


def _ok(message: str) -> str:
    return message


def _error(message: str) -> str:
    return f'**Error:** {message}'


def build_page(service: ReposeService, model: str | None = None) -> gr.Blocks:
    """The page's :class:`gradio.Blocks` (not launched). ``model``: the model folder name chosen at first."""

    def model_choices() -> list[tuple[str, str]]:
        return [(entry.label, entry.name) for entry in service.models()]

    choices = model_choices()
    names = [name for _, name in choices]
    initial = model if model in names else (names[0] if names else None)

    with gr.Blocks(title=TITLE, analytics_enabled=False) as page:
        gr.Markdown(f'# {TITLE}\n{INTRO}')
        source_state = gr.State(None)       # {'kind': 'upload', 'image', 'keypoints'} | {'kind': 'dataset', 'index'}
        space_state = gr.State(None)        # {'kind': 'model' | 'photo', 'size': [H, W] | None}
        with gr.Row():
            model_box = gr.Dropdown(choices=choices, value=initial, label='Model', elem_id='model', scale=2,
                                    info='experiment folders with a pose-transfer model: name (dataset, HxW)')
            model_note = gr.Markdown(elem_id='model-note')
        with gr.Row(equal_height=False):
            with gr.Column():
                gr.Markdown('### 1. Source person')
                with gr.Tabs():
                    with gr.Tab('Upload a photo'):
                        source_file = gr.File(label='Photo (JPEG, PNG, BMP, WebP, TIFF; at most 20 MB)',
                                              file_types=['image'], height=120, elem_id='source-file')
                        source_pose_file = gr.File(label="Its keypoints (optional OpenPose/COCO JSON; else detected)",
                                                   file_types=['.json'], height=120, elem_id='source-pose-file')
                    with gr.Tab('Dataset test images'):
                        source_gallery = gr.Gallery(label='Test images', columns=8, height=150, allow_preview=False,
                                                    format='png', object_fit='contain', elem_id='source-gallery')
                source_preview = gr.Image(label='Source', interactive=False, height=256, format='png',
                                          buttons=['fullscreen'], elem_id='source-preview')
            with gr.Column():
                gr.Markdown('### 2. Target pose')
                with gr.Tabs():
                    with gr.Tab('Dataset test poses'):
                        pose_gallery = gr.Gallery(label='Test poses', columns=8, height=150, allow_preview=False,
                                                  format='png', object_fit='contain', elem_id='pose-gallery')
                    with gr.Tab('From a photo'):
                        target_image_file = gr.File(label='Photo of someone in the target pose (pose detected)',
                                                    file_types=['image'], height=120, elem_id='target-image-file')
                    with gr.Tab('Keypoint file'):
                        target_pose_file = gr.File(label='OpenPose / COCO keypoint JSON', file_types=['.json'],
                                                   height=120, elem_id='target-pose-file')
                pose_preview = gr.Image(label='Target pose', interactive=False, height=256, format='png',
                                        buttons=['fullscreen'], elem_id='pose-preview')
                with gr.Accordion('Adjust the pose joint by joint (x, y in pixels; -1, -1 = missing)', open=False):
                    joints = gr.Dataframe(headers=['joint', 'x', 'y'], datatype=['str', 'number', 'number'],
                                          row_count=18, column_count=3, interactive=True, static_columns=[0],
                                          elem_id='joints')
        run_button = gr.Button('Run', variant='primary', elem_id='run')
        status = gr.Markdown(elem_id='status')
        with gr.Tabs():
            with gr.Tab('Result'):
                result_image = gr.Image(label='Result', interactive=False, type='filepath', format='png', height=320,
                                        buttons=['download', 'fullscreen'], elem_id='result')
                download = gr.DownloadButton('Download the result (PNG)', visible=False, elem_id='download')
            with gr.Tab('How it was made'):
                panels = gr.Gallery(label='Intermediate panels', columns=5, height=360, format='png',
                                    object_fit='contain', elem_id='panels')
            with gr.Tab('Sequence'):
                gr.Markdown('The source person through a sequence of poses, as an animated GIF.')
                sequence_kind = gr.Radio(list(SEQUENCE_SOURCES), value=SEQUENCE_SOURCES[0], label='Poses',
                                         elem_id='sequence-kind')
                sequence_zip = gr.File(label='ZIP of per-frame keypoint JSON files (natural file-name order)',
                                       file_types=['.zip'], elem_id='sequence-zip')
                fps = gr.Slider(1, 30, value=8, step=1, label='Frames per second', elem_id='fps')
                sequence_button = gr.Button('Make the animation', variant='primary', elem_id='run-sequence')
                sequence_status = gr.Markdown(elem_id='sequence-status')
                sequence_image = gr.Image(label='Animation', interactive=False, type='filepath', height=320,
                                          elem_id='sequence')
                sequence_download = gr.DownloadButton('Download the animation (GIF)', visible=False,
                                                      elem_id='sequence-download')

        # ------------------------------------------------------------------------------------ handlers
        def on_model(name: str | None):
            clear = (None, None, None, None, [], [], None)
            if not name:
                return (_error(service.no_models_message()), *clear)
            try:
                note = service.gallery_note(name)
                gallery = service.gallery(name)
            except AppError as e:
                return (_error(str(e)), *clear)
            sources, poses = [], []
            if gallery is not None:
                size = gallery.image_size
                sources = [load_image(path) for path in gallery.images]
                poses = [draw_pose(pose, size) for pose in gallery.poses]
            return note, None, None, None, None, sources, poses, None

        model_box.change(on_model, model_box, [model_note, source_state, space_state, source_preview, pose_preview,
                                               source_gallery, pose_gallery, joints], queue=False)
        page.load(on_model, model_box, [model_note, source_state, space_state, source_preview, pose_preview,
                                        source_gallery, pose_gallery, joints], queue=False)

        def on_source_file(path: str | None, pose_path: str | None):
            if not path:
                return None, None, ''
            try:
                image = service.check_source_upload(path)
            except AppError as e:
                return None, None, _error(str(e))
            return {'kind': 'upload', 'image': path, 'keypoints': pose_path}, image, ''

        source_file.change(on_source_file, [source_file, source_pose_file], [source_state, source_preview, status])

        def on_source_pose(pose_path: str | None, state: dict | None):
            if pose_path:
                try:
                    service.check_keypoint_file(pose_path)
                except AppError as e:
                    return state, _error(str(e))
            if state and state.get('kind') == 'upload':
                return {**state, 'keypoints': pose_path}, ''
            return gr.skip(), ''

        source_pose_file.change(on_source_pose, [source_pose_file, source_state], [source_state, status])

        def on_source_gallery(name: str | None, evt: gr.SelectData):
            gallery = service.gallery(name) if name else None
            if gallery is None or not 0 <= evt.index < len(gallery):
                return None, None, _error('pick a test image of the chosen model')
            return {'kind': 'dataset', 'index': int(evt.index)}, load_image(gallery.images[evt.index]), ''

        source_gallery.select(on_source_gallery, model_box, [source_state, source_preview, status])

        def show_pose(keypoints: np.ndarray, space: PoseSpace):
            return (pose_table(keypoints), draw_skeleton(keypoints, space.size),
                    {'kind': space.kind, 'size': list(space.size) if space.size else None}, '')

        def on_pose_gallery(name: str | None, evt: gr.SelectData):
            gallery = service.gallery(name) if name else None
            if gallery is None or not 0 <= evt.index < len(gallery):
                return None, None, None, _error('pick a test pose of the chosen model')
            return show_pose(gallery.poses[evt.index], PoseSpace('model', gallery.image_size))

        pose_outputs = [joints, pose_preview, space_state, status]
        pose_gallery.select(on_pose_gallery, model_box, pose_outputs)

        def on_target_image(name: str | None, path: str | None):
            if not path:
                return gr.skip(), gr.skip(), gr.skip(), ''
            try:
                keypoints, size = service.detect_pose(name, path) if name else (None, None)
                if keypoints is None:
                    raise AppError(service.no_models_message())
            except AppError as e:
                return gr.skip(), gr.skip(), gr.skip(), _error(str(e))
            return show_pose(keypoints, PoseSpace('photo', tuple(size)))

        target_image_file.change(on_target_image, [model_box, target_image_file], pose_outputs)

        def on_target_pose_file(path: str | None):
            if not path:
                return gr.skip(), gr.skip(), gr.skip(), ''
            try:
                keypoints = service.check_keypoint_file(path)
            except AppError as e:
                return gr.skip(), gr.skip(), gr.skip(), _error(str(e))
            return show_pose(keypoints, PoseSpace('photo', None))

        target_pose_file.change(on_target_pose_file, target_pose_file, pose_outputs)

        def on_joints(rows: Any, space: dict | None):
            try:
                keypoints = pose_from_table(rows)
            except AppError:
                return gr.skip()
            size = tuple(space['size']) if space and space.get('size') else None
            return draw_skeleton(keypoints, size)

        joints.input(on_joints, [joints, space_state], pose_preview, queue=False)

        def source_of(state: dict | None) -> SourceChoice:
            if not state:
                raise AppError('choose the source person first (upload a photo or pick a test image)')
            if state['kind'] == 'dataset':
                return SourceChoice(dataset_index=int(state['index']))
            return SourceChoice(image=_path(state['image']), keypoints=_path(state.get('keypoints')))

        def request(state: dict | None, rows: Any, space: dict | None) -> tuple[SourceChoice, np.ndarray, PoseSpace]:
            source = source_of(state)
            if not space:
                raise AppError('choose the target pose first (a test pose, a photo or a keypoint file)')
            target = pose_from_table(rows)
            return source, target, PoseSpace(space['kind'], tuple(space['size']) if space.get('size') else None)

        def on_run(name: str | None, state: dict | None, rows: Any, space: dict | None):
            try:
                if not name:
                    raise AppError(service.no_models_message())
                source, target, pose_space = request(state, rows, space)
                out = service.repose(name, source, target, pose_space)
            except AppError as e:
                return _error(str(e)), None, gr.update(visible=False), []
            return (_ok(out.summary), str(out.path), gr.update(value=str(out.path), visible=True),
                    [(str(p.path), p.label) for p in out.panels])

        run_button.click(on_run, [model_box, source_state, joints, space_state],
                         [status, result_image, download, panels], concurrency_limit=1, concurrency_id='model')

        def on_sequence(name: str | None, state: dict | None, rows: Any, space: dict | None, kind: str,
                        zip_path: str | None, rate: float):
            try:
                if not name:
                    raise AppError(service.no_models_message())
                if kind == SEQUENCE_SOURCES[1]:
                    if not zip_path:
                        raise AppError('upload a ZIP of per-frame keypoint JSON files first')
                    source = source_of(state)
                    poses = service.read_sequence_zip(zip_path)
                    pose_space = PoseSpace('photo', None)
                else:
                    source, target, pose_space = request(state, rows, space)
                    poses = walk_cycle(target)
                out = service.sequence(name, source, poses, pose_space, fps=float(rate))
            except AppError as e:
                return _error(str(e)), None, gr.update(visible=False)
            return _ok(out.summary), str(out.path), gr.update(value=str(out.path), visible=True)

        sequence_button.click(on_sequence, [model_box, source_state, joints, space_state, sequence_kind, sequence_zip,
                                            fps], [sequence_status, sequence_image, sequence_download],
                              concurrency_limit=1, concurrency_id='model')
    return page


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def theme() -> gr.themes.Base:
    """Gradio's default look with the browser's own fonts (no font download)."""
    return gr.themes.Default(font=['ui-sans-serif', 'system-ui', 'sans-serif'],
                             font_mono=['ui-monospace', 'monospace'])


def launch(page: gr.Blocks, *, host: str = '127.0.0.1', port: int = 7860, share: bool = False,
           max_upload_bytes: int, queue_size: int = 16, block: bool = True) -> None:
    """Serve ``page``: one request at a time on the model (the rest wait in a queue of ``queue_size``), uploads
    limited to ``max_upload_bytes``, bound to ``host``. ``block=False`` returns once the server runs."""
    page.queue(default_concurrency_limit=1, max_size=queue_size)
    page.launch(server_name=host, server_port=port, share=share, max_file_size=max_upload_bytes, show_error=False,
                prevent_thread_lock=not block, quiet=False, ssr_mode=False, theme=theme(), footer_links=[],
                inbrowser=False)
