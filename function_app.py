"""The Durable Functions app: registers the blueprints and nothing else."""

import azure.durable_functions as df

from activities.aci_scanner import aci_scanner_blueprint
from activities.arm_resources import arm_resources_blueprint
from activities.inventory_events import inventory_events_blueprint
from activities.notifications import notifications_blueprint
from activities.orchestration_client import orchestration_client_blueprint
from activities.registry import registry_blueprint
from activities.rescan_activities import rescan_blueprint
from activities.results_store import results_blueprint
from activities.sweep_activities import sweep_blueprint
from entities.aci_quota import bp as aci_quota_bp
from entities.image_lease import bp as image_lease_bp
from entities.scan_queue import bp as scan_queue_bp
from orchestrators.inventory_events import bp as inventory_events_bp
from orchestrators.inventory_rescan import bp as inventory_rescan_bp
from orchestrators.inventory_sweep import bp as inventory_sweep_bp
from orchestrators.scan_batch import bp as scan_batch_bp
from orchestrators.scan_deployment import bp as scan_deployment_bp
from orchestrators.scan_deployment_v2 import bp as scan_deployment_v2_bp
from starters.alert_digest import bp as alert_digest_bp
from starters.eventhub_starter import bp as eventhub_starter_bp
from starters.exceptions_api import bp as exceptions_api_bp
from starters.exports_api import bp as exports_api_bp
from starters.http_api import bp as http_api_bp
from starters.inventory_api import bp as inventory_api_bp
from starters.janitor import bp as janitor_bp
from starters.rescan import bp as rescan_bp
from starters.sweep import bp as sweep_bp
from starters.upload_events import bp as upload_events_bp

app = df.DFApp()
app.register_functions(eventhub_starter_bp)
app.register_functions(scan_deployment_bp)
app.register_functions(scan_deployment_v2_bp)
app.register_functions(scan_batch_bp)
app.register_functions(scan_queue_bp)
app.register_functions(orchestration_client_blueprint)
app.register_functions(image_lease_bp)
app.register_functions(aci_quota_bp)
app.register_functions(arm_resources_blueprint)
app.register_functions(aci_scanner_blueprint)
app.register_functions(results_blueprint)
app.register_functions(registry_blueprint)
app.register_functions(notifications_blueprint)
app.register_functions(http_api_bp)
app.register_functions(exports_api_bp)
app.register_functions(janitor_bp)
app.register_functions(upload_events_bp)
app.register_functions(alert_digest_bp)
app.register_functions(inventory_sweep_bp)
app.register_functions(inventory_events_bp)
app.register_functions(inventory_events_blueprint)
app.register_functions(sweep_blueprint)
app.register_functions(sweep_bp)
app.register_functions(inventory_api_bp)
app.register_functions(exceptions_api_bp)
app.register_functions(inventory_rescan_bp)
app.register_functions(rescan_blueprint)
app.register_functions(rescan_bp)
