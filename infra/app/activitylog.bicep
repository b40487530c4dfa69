// Optional route (the seed's): stream the subscription Activity Log, category Administrative, to the hub.
targetScope = 'subscription'

param settingName string
param eventHubAuthorizationRuleId string
param eventHubName string

resource activityLogToHub 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  properties: {
    eventHubAuthorizationRuleId: eventHubAuthorizationRuleId
    eventHubName: eventHubName
    logs: [
      {
        category: 'Administrative'
        enabled: true
      }
    ]
  }
}
