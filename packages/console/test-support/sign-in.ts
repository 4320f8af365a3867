import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

/** Signs in through the form, as a person would, and waits for the navigation. */
export async function signIn(token: string): Promise<void> {
  // The form appears once the app has asked for a live session (there is none yet).
  await userEvent.type(await screen.findByLabelText("Admin token"), token);
  await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
  await screen.findByRole("navigation", { name: "Main" });
}
