"""The Durable Functions app: registers the blueprints and nothing else."""

import azure.durable_functions as df

from activities.aci_scanner import aci_scanner_blueprint
from activities.arm_resources import arm_resources_blueprint
from activities.notifications import notifications_blueprint
from activities.registry import registry_blueprint
from activities.results_store import results_blueprint
from entities.aci_quota import bp as aci_quota_bp
from entities.image_lease import bp as image_lease_bp
from orchestrators.scan_deployment import bp as scan_deployment_bp
from starters.alert_digest import bp as alert_digest_bp
from starters.eventhub_starter import bp as eventhub_starter_bp
from starters.exceptions_api import bp as exceptions_api_bp
from starters.http_api import bp as http_api_bp
from starters.janitor import bp as janitor_bp
from starters.upload_events import bp as upload_events_bp

app = df.DFApp()
app.register_functions(eventhub_starter_bp)
app.register_functions(scan_deployment_bp)
app.register_functions(image_lease_bp)
app.register_functions(aci_quota_bp)
app.register_functions(arm_resources_blueprint)
app.register_functions(aci_scanner_blueprint)
app.register_functions(results_blueprint)
app.register_functions(registry_blueprint)
app.register_functions(notifications_blueprint)
app.register_functions(http_api_bp)
app.register_functions(janitor_bp)
app.register_functions(upload_events_bp)
app.register_functions(alert_digest_bp)
app.register_functions(exceptions_api_bp)
