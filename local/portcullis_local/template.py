"""The SAM template (infra/template.yaml) as CloudFormation sees it, without an AWS account.

    python -m portcullis_local.template translate [--template T] [--output F] [--region R]
    python -m portcullis_local.template package --lambda-dir D [--template T] [--output F]

``translate(template_path)`` returns the CloudFormation template that the AWS::Serverless-2016-10-31
transform makes of it: the SAM translator's own code (``samtranslator``, the library CloudFormation's
SAM transform, ``sam validate`` and cfn-lint run), after the steps that come before it on AWS:

- ``sam package`` uploads each local artifact (a function's ``CodeUri``, a state machine's
  ``DefinitionUri``) and writes its S3 location instead: here a placeholder location
  (``s3://LOCAL_ARTIFACTS_BUCKET/<path from the repository root>``), once the path is known to exist;
- CloudFormation runs ``AWS::Include`` before the SAM transform: a local ``Location`` (openapi.yaml) is
  replaced by the file's content.

Nothing calls AWS. The translator knows the ARNs of AWS's managed policies by name; the one thing it
would ask IAM for is the ARN of any other policy named in ``Policies`` by a bare name. That raises
``ValueError`` here (give the policy's ARN instead).
``make check-templates`` writes the result to ``target/template.translated.json``.

``package`` is ``make package``'s: a copy of the template whose functions point at prebuilt binaries
(``<lambda dir>/<binary>/bootstrap``, cargo lambda's layout), for ``sam deploy --template-file``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
DEFAULT_OUTPUT = REPO_ROOT / "target" / "template.translated.json"
DEFAULT_REGION = "us-east-1"
LOCAL_ARTIFACTS_BUCKET = "local-artifacts"

# The properties `sam package` uploads when they name a local path (the ones this template uses).
LOCAL_ARTIFACT_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::Serverless::Api": "DefinitionUri",
}


class _TemplateLoader(yaml.SafeLoader):
    """Plain YAML, plus CloudFormation's short-form tags (!Ref x, !GetAtt a.b, !Sub …) as their long forms."""


def _short_form(loader: _TemplateLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_TemplateLoader.add_multi_constructor("!", _short_form)


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_TemplateLoader)  # noqa: S506 (a SafeLoader subclass)


def _is_local(location: Any) -> bool:
    return isinstance(location, str) and not location.startswith(("s3://", "https://", "http://"))


def _local_path(location: str, base_dir: Path, what: str) -> Path:
    path = (base_dir / location).resolve()
    if not path.exists():
        raise FileNotFoundError(f"{what}: {location} (resolved to {path}) does not exist")
    return path


def _artifact_key(path: Path) -> str:
    try:
        return path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.as_posix().lstrip("/")


def _resolve_includes(node: Any, base_dir: Path) -> Any:
    """Every {Fn::Transform: {Name: AWS::Include, Parameters: {Location: <local file>}}} becomes the file."""
    if isinstance(node, dict):
        transform = node.get("Fn::Transform")
        if len(node) == 1 and isinstance(transform, dict) and transform.get("Name") == "AWS::Include":
            location = (transform.get("Parameters") or {}).get("Location")
            if _is_local(location):
                return load_yaml(_local_path(location, base_dir, "AWS::Include Location"))
        return {key: _resolve_includes(value, base_dir) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve_includes(item, base_dir) for item in node]
    return node


def _resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in (template.get("Resources") or {}).items() if isinstance(value, dict)}


def as_packaged(template_path: str | Path) -> dict[str, Any]:
    """The SAM template as the SAM transform gets it on AWS: includes resolved, local artifacts in S3."""
    path = Path(template_path).resolve()
    template = _resolve_includes(load_yaml(path), path.parent)
    for logical_id, resource in _resources(template).items():
        prop = LOCAL_ARTIFACT_PROPERTIES.get(resource.get("Type"))
        properties = resource.get("Properties") or {}
        if prop and _is_local(properties.get(prop)):
            local = _local_path(properties[prop], path.parent, f"{logical_id}.{prop}")
            properties[prop] = f"s3://{LOCAL_ARTIFACTS_BUCKET}/{_artifact_key(local)}"
    return template


def _no_managed_policy_lookup() -> dict[str, str]:
    raise ValueError(
        "a Policies entry is a bare name that is no AWS managed policy the translator knows; only IAM could "
        "turn it into an ARN, so the offline translation needs the policy's ARN"
    )


def translate(template_path: str | Path, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """The CloudFormation template that the SAM transform makes of ``template_path`` (see the module doc)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

    template = as_packaged(template_path)
    parameter_values: dict[str, Any] = {}
    # What samtranslator.translator.transform.transform does, with the region given (a boto3 session
    # needs no credentials; the translator takes AWS::Region and AWS::Partition from it).
    to_py27_compatible_template(template, parameter_values)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    translated = translator.translate(
        template, parameter_values=parameter_values, get_managed_policy_map=_no_managed_policy_lookup
    )
    return undo_mark_unicode_str_in_template(translated)


def package_template(template_path: str | Path, lambda_dir: str | Path) -> dict[str, Any]:
    """The template with each rust-cargolambda function's CodeUri at ``<lambda_dir>/<Binary>/``.

    Other local paths become absolute, so the copy may be written anywhere.
    """
    path = Path(template_path).resolve()
    lambda_dir = Path(lambda_dir).resolve()
    template = load_yaml(path)
    for logical_id, resource in _resources(template).items():
        properties = resource.get("Properties") or {}
        metadata = resource.get("Metadata") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and metadata.get("BuildMethod") == "rust-cargolambda":
            binary = (metadata.get("BuildProperties") or {}).get("Binary")
            if not binary:
                raise ValueError(f"{logical_id}: Metadata.BuildProperties.Binary names no binary")
            properties["CodeUri"] = str(_local_path(binary, lambda_dir, f"{logical_id}.CodeUri"))
            # Built already: `sam build` on this copy would try to build the binary's directory.
            for key in ("BuildMethod", "BuildProperties"):
                metadata.pop(key, None)
            continue
        prop = LOCAL_ARTIFACT_PROPERTIES.get(resource.get("Type"))
        if prop and _is_local(properties.get(prop)):
            properties[prop] = str(_local_path(properties[prop], path.parent, f"{logical_id}.{prop}"))
    return _absolute_includes(template, path.parent)


def _absolute_includes(node: Any, base_dir: Path) -> Any:
    if isinstance(node, dict):
        transform = node.get("Fn::Transform")
        if isinstance(transform, dict) and transform.get("Name") == "AWS::Include":
            parameters = transform.get("Parameters") or {}
            if _is_local(parameters.get("Location")):
                node = copy.deepcopy(node)
                location = parameters["Location"]
                node["Fn::Transform"]["Parameters"]["Location"] = str(
                    _local_path(location, base_dir, "AWS::Include Location")
                )
                return node
        return {key: _absolute_includes(value, base_dir) for key, value in node.items()}
    if isinstance(node, list):
        return [_absolute_includes(item, base_dir) for item in node]
    return node


def _write(document: dict[str, Any], output: Path, as_yaml: bool) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as stream:
        if as_yaml:
            yaml.safe_dump(document, stream, sort_keys=False, width=120)
        else:
            json.dump(document, stream, indent=2)
            stream.write("\n")


def main(argv: list[str] | None = None) -> int:
    root = argparse.ArgumentParser(prog="python -m portcullis_local.template", description=__doc__.split("\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("translate", help="write the CloudFormation translation (JSON)")
    cmd.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="default: infra/template.yaml")
    cmd.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default: target/template.translated.json")
    cmd.add_argument("--region", default=DEFAULT_REGION, help=f"AWS::Region of the translation ({DEFAULT_REGION})")
    cmd = commands.add_parser("package", help="write a template whose functions are prebuilt binaries (YAML)")
    cmd.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="default: infra/template.yaml")
    cmd.add_argument("--lambda-dir", type=Path, required=True, help="cargo lambda's output: <dir>/<binary>/bootstrap")
    cmd.add_argument("--output", type=Path, help="default: <lambda dir>/template.yaml")
    args = root.parse_args(argv)
    # The translator warns on every run that a feature toggle it looks up has no configuration.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    try:
        if args.command == "translate":
            output = args.output
            _write(translate(args.template, args.region), output, as_yaml=False)
        else:
            output = args.output or args.lambda_dir / "template.yaml"
            _write(package_template(args.template, args.lambda_dir), output, as_yaml=True)
    except Exception as error:  # noqa: BLE001 (the message is the answer; no traceback)
        # The translator's InvalidDocumentException says how many errors; its causes say which.
        causes = [getattr(cause, "message", str(cause)) for cause in getattr(error, "causes", None) or []]
        print(f"{root.prog} {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        for cause in causes:
            print(f"  {cause}", file=sys.stderr)
        return 1
    print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
