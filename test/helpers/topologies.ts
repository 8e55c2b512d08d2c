/**
 * A topology `t` of `replicas` `web` instances (a custom role running /bin/sleep). With `rev`, its
 * environment carries `REV`, so each new `rev` is a config change that restarts every instance
 * (the HA tests and bench apply one after another).
 */
export function webTopology(replicas: number, rev?: number): string {
  return `
apiVersion: drover.dev/v1
kind: Topology
metadata: { name: t }
cluster: { name: t }
customRoles:
  web:
    command: /bin/sleep
    args: ["1000"]${rev === undefined ? '' : `\n    env: { REV: "${rev}" }`}
roles:
  web: { replicas: ${replicas} }
`;
}
