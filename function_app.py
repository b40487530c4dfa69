"""The Durable Functions app: registers the blueprints and nothing else."""

import azure.durable_functions as df

from orchestrators.scan_deployment import bp as scan_deployment_bp
from starters.eventhub_starter import bp as eventhub_starter_bp

app = df.DFApp()
app.register_functions(eventhub_starter_bp)
app.register_functions(scan_deployment_bp)
