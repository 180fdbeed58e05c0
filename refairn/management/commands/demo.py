import os

from django.core.management.base import BaseCommand

from refairn.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo workspace (first run) and print how to use it."

    def handle(self, *args: object, **options: object) -> None:
        info = seed_demo()
        base = f"http://{os.environ.get('REFAIRN_ADDRESS', '127.0.0.1:8000')}"
        self.stdout.write(self.style.SUCCESS("Refairn demo workspace" + (" created" if info.created else "")))
        self.stdout.write(f"  businessId : {info.business_id}")
        self.stdout.write(f"  productId  : {info.product_id}")
        self.stdout.write(f"  API key    : {info.api_key}")
        self.stdout.write(f"  admin      : {base}/admin/  user {info.admin_user}"
                          f"  password {info.admin_password}")
        for username, password in info.agent_logins:
            self.stdout.write(f"  agent      : {base}/agent/  user {username}  password {password}")
        self.stdout.write(f"  API docs   : {base}/api/docs/")
