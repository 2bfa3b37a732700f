import sys

from django.core.management.base import BaseCommand

from ledger import witness_client


class Command(BaseCommand):
    help = ("Run a witness: cosign the operator's checkpoints through the read API while its history only "
            "grows; refuse, keep the evidence and exit 2 otherwise. Same as python -m ledger.witness_client.")

    def add_arguments(self, parser):
        for action in witness_client.build_parser()._actions:
            if action.dest == "help":
                continue
            kwargs = {"help": action.help, "default": action.default, "required": action.required}
            if action.const is True:
                kwargs["action"] = "store_true"
            elif action.type:
                kwargs["type"] = action.type
            parser.add_argument(*action.option_strings, **kwargs)

    def handle(self, *args, **options):
        argv = []
        for action in witness_client.build_parser()._actions:
            value = options.get(action.dest)
            if action.dest == "help" or value is None or value is False:
                continue
            argv += [action.option_strings[0]] + ([] if value is True else [str(value)])
        code = witness_client.main(argv, stdout=self.stdout)
        if code:
            sys.exit(code)
