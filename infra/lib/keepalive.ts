// Keep-alive without Lambda (infra/README.md: Keep-alive): a `ping` route on the WebSocket API
// whose MOCK integration API Gateway answers itself, so `{"action":"ping"}` is answered
// `{"type":"pong"}` without invoking (or paying for) a function.
//
// How API Gateway does it:
//  - the route `ping` is picked by the API's route selection expression `$request.body.action`;
//  - a MOCK integration answers with the status code its request template gives: the template
//    selection expression `\$default` (an escaped `$`) evaluates to the key `$default`, whose
//    template is `{"statusCode":200}` ("Set up a WebSocket API integration request",
//    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-integration-requests.html;
//    "WebSocket selection expressions",
//    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-selection-expressions.html);
//  - a non-proxy integration needs an integration response to produce a body: the catch-all key
//    `$default` with the response template `{"type":"pong"}`
//    (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-integration-responses.html);
//  - and the route needs a route response (`$default`) for API Gateway to send anything back to
//    the client: two-way communication
//    (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html).
//
// The `default` function still answers `ping` (a frame whose body is not JSON, say, never
// reaches this route), with the same bytes: `ServerReply::Pong` (model/src/frame.rs), which
// `switchboard serve` sends too.

import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketMockIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';

/** The route key, the `action` of the client's keep-alive frame. */
export const PING_ROUTE_KEY = 'ping';
/** The MOCK integration's request template: the status code it answers with. */
export const PING_REQUEST_TEMPLATE = '{"statusCode":200}';
/** The frame API Gateway sends back: byte for byte `ServerReply::Pong` of model/src/frame.rs. */
export const PONG_FRAME = '{"type":"pong"}';
/** A selection expression that always picks the `$default` key (`$` escaped). */
const SELECT_DEFAULT = '\\$default';

/** Adds the `ping` route, its MOCK integration, integration response and route response. */
export function addPingRoute(api: apigwv2.WebSocketApi): apigwv2.WebSocketRoute {
  const route = api.addRoute(PING_ROUTE_KEY, {
    integration: new WebSocketMockIntegration('PingIntegration', {
      requestTemplates: { $default: PING_REQUEST_TEMPLATE },
      templateSelectionExpression: SELECT_DEFAULT,
    }),
    // A route response `$default`: API Gateway returns the integration's answer to the client.
    returnResponse: true,
  });
  const integrations = route.node.findAll().filter((c): c is apigwv2.CfnIntegration => c instanceof apigwv2.CfnIntegration);
  if (integrations.length !== 1) throw new Error(`expected one integration under the ping route, found ${integrations.length}`);
  new apigwv2.CfnIntegrationResponse(route, 'PongResponse', {
    apiId: api.apiId,
    integrationId: integrations[0].ref,
    integrationResponseKey: '$default',
    templateSelectionExpression: SELECT_DEFAULT,
    responseTemplates: { $default: PONG_FRAME },
  });
  return route;
}
