from config.formats.zh_Hans.formats import *  # noqa: F403  (the same conventions in English)
