"""The web page: try a trained model in the browser (``python scripts/app.py``).

* :mod:`webapp.catalog`: the pose-transfer models under ``checkpoints/`` and their datasets' test images and poses;
* :mod:`webapp.uploads`: size and type checks of uploads before anything decodes them;
* :mod:`webapp.service`: :class:`~webapp.service.ReposeService`, the page's requests without the page (one at a time,
  every failure a readable message);
* :mod:`webapp.page`: the Gradio page over the service (imports ``gradio``, from requirements-app.txt).

A floor above ``inference/`` (named ``webapp`` because ``scripts/app.py`` would shadow a package ``app``): it may
import inference, options, models, data, metrics and util; ``scripts/app.py`` is a thin layer over it. This
package's ``__init__`` does not import :mod:`webapp.page`, so the service works without Gradio.
"""
