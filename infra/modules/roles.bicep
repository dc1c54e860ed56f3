// Data-plane roles for the app's user-assigned managed identity, each on the narrowest resource that needs it.
// Role definition IDs are Azure built-in roles, listed at
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles

@description('Principal (object) ID of the user-assigned managed identity the Functions app runs as.')
param principalId string

@description('Storage account holding the Functions host state, the Durable task hub and the run artifacts.')
param storageAccountName string

@description('Existing container registry the app pulls its image from.')
param registryName string

@description('Application Insights component the Functions host reports to.')
param appInsightsName string

@description('Durable Task Scheduler name; empty when the Azure Storage backend is used.')
param durableSchedulerName string = ''

@description('Object ID of a person or group that uploads models and reads results (--auth-mode login); empty: none.')
param operatorPrincipalId string = ''

@description('Principal type of operatorPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

var roleIds = {
  // Host storage (AzureWebJobsStorage: keys, leases, blob receipts), the blob trigger, the Durable task hub's lease and
  // large-message containers and the artifacts: read, write, delete blobs and create containers. Contributor does all
  // of it; Owner adds only ACL and ownership changes on hierarchical-namespace accounts, which this one is not. The
  // scope is the account because the host and the task hub create their containers at run time (infra/README.md).
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  // Durable task hub control and work-item queues; the blob trigger's poison queue.
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Durable task hub history and instance tables.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  durableTaskDataContributor: '0ad04412-c4d5-4796-b79c-f76d14c8d402'
}

var storageRolesForApp = [
  roleIds.storageBlobDataContributor
  roleIds.storageQueueDataContributor
  roleIds.storageTableDataContributor
]

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' existing = {
  name: registryName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' existing = if (!empty(durableSchedulerName)) {
  name: durableSchedulerName
}

resource appStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in storageRolesForApp: {
    name: guid(storage.id, principalId, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource appAcrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, roleIds.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.acrPull)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roleIds.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roleIds.monitoringMetricsPublisher
    )
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource appDurableTask 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(durableSchedulerName)) {
  name: guid(scheduler.id, principalId, roleIds.durableTaskDataContributor)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roleIds.durableTaskDataContributor
    )
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// For the operator: read and write blobs (upload models, download results), nothing else.
resource operatorBlobAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(storage.id, operatorPrincipalId, roleIds.storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roleIds.storageBlobDataContributor
    )
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}
