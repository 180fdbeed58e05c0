from django.core.management.base import BaseCommand

from refairn.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo workspace (first run) and print how to use it."

    def handle(self, *args: object, **options: object) -> None:
        info = seed_demo()
        self.stdout.write(self.style.SUCCESS("Refairn demo workspace" + (" created" if info.created else "")))
        self.stdout.write(f"  businessId : {info.business_id}")
        self.stdout.write(f"  productId  : {info.product_id}")
        self.stdout.write(f"  API key    : {info.api_key}")
        self.stdout.write(f"  admin      : http://127.0.0.1:8000/admin/  user {info.admin_user}"
                          f"  password {info.admin_password}")
        for username, password in info.agent_logins:
            self.stdout.write(f"  agent      : http://127.0.0.1:8000/agent/  user {username}  password {password}")
        self.stdout.write("  API docs   : http://127.0.0.1:8000/api/docs/")
