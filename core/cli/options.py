"""Command-line flags made from the settings dataclasses, so the CLI, the dashboard's forms and
the library accept exactly the same settings: one `--name` flag per user-set field, its help,
type, choices and range from the field's declaration (`core.config`)."""
from __future__ import annotations

import argparse

from ..config import DEFAULT_DETECTOR, DETECTORS, Config, option_types, user_options


def add_config_options(parser: argparse.ArgumentParser, defaults=None) -> None:
    """One `--name` flag per user-set field of a settings dataclass (Config unless `defaults`
    is another, e.g. AnswerSettings()). Values are checked by the dataclass itself when
    `config_from_args` builds it."""
    defaults = defaults or Config()
    kinds = option_types(type(defaults))
    for option in user_options(type(defaults)):
        flag, default, meta = f"--{option.name.replace('_', '-')}", getattr(defaults, option.name), option.metadata
        if kinds[option.name] is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=f"{meta['help']} (default: {'yes' if default else 'no'})")
        else:
            shown = "none" if default is None else default
            parser.add_argument(flag, type=kinds[option.name], default=default, choices=meta["choices"],
                                help=f"{meta['help']} (default {shown})")


def config_from_args(args: argparse.Namespace, kind=Config):
    """The settings dataclass `kind` (Config by default) from flags made by `add_config_options`;
    ValueError (one line, naming the flag's field) for a value it refuses."""
    return kind(**{option.name: getattr(args, option.name) for option in user_options(kind)})


def add_detector_option(parser: argparse.ArgumentParser) -> None:
    """`--detector`, shared by the commands that find faces in photos."""
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                        help="face detector: yunet (finds turned, small and masked faces; default) or "
                             "blazeface (faster, near frontal faces)")
