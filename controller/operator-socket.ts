/**
 * Where the operator API listens inside a state directory. Its own module because every CLI
 * command needs the name and none but `controller start` should pay for loading the controller.
 */
export const OPERATOR_SOCKET = 'convoy.sock';
